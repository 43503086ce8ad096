//! Builds a policy module: the generic guest with a rule image embedded, wrapped as a
//! WebAssembly component.
//!
//! The generic guest exports two hooks, `linkward_image_len` and `linkward_image_copy`.
//! Embedding appends the image as a passive data segment, replaces the two hook bodies
//! with `i32.const LEN` and `memory.init`, and drops the hooks from the export list, so the
//! finished component exports only the WIT world and imports nothing. Every other byte of
//! the guest is copied unchanged, which keeps compiling fast and the result predictable.

use thiserror::Error;
use wasm_encoder::{
    CodeSection, CustomSection, DataCountSection, DataSection, ExportKind, ExportSection, Function,
    Instruction, RawSection,
};
use wasmparser::{ExternalKind, Parser, Payload, TypeRef, ValType};

/// The generic guest core module, built from `guest/` by this crate's build script.
pub static GENERIC_GUEST: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/linkward_guest.core.wasm"));

const LEN_HOOK: &str = "linkward_image_len";
const COPY_HOOK: &str = "linkward_image_copy";

/// Why a module could not be built.
#[derive(Debug, Error)]
pub enum ModuleError {
    #[error("the generic guest is not a valid core module: {0}")]
    Parse(#[from] wasmparser::BinaryReaderError),
    #[error("the generic guest lacks the image hook `{0}` with the expected signature")]
    MissingHook(&'static str),
    #[error("the rule image is too large to embed ({0} bytes)")]
    ImageTooLarge(usize),
    #[error("cannot wrap the module as a component: {0}")]
    Component(String),
}

/// Builds the finished component for `image` (the bytes of a serialized rule image).
pub fn build_component(image: &[u8]) -> Result<Vec<u8>, ModuleError> {
    let core = embed_image(GENERIC_GUEST, image)?;
    wit_component::ComponentEncoder::default()
        .module(&core)
        .map_err(|e| ModuleError::Component(format!("{e:#}")))?
        .validate(true)
        .encode()
        .map_err(|e| ModuleError::Component(format!("{e:#}")))
}

/// What the first pass learns about the guest.
#[derive(Default)]
struct Layout {
    imported_funcs: u32,
    func_types: Vec<u32>,
    types: Vec<Option<(Vec<ValType>, Vec<ValType>)>>,
    len_hook: Option<u32>,
    copy_hook: Option<u32>,
    data_segments: u32,
    has_data_count: bool,
}

impl Layout {
    fn read(core: &[u8]) -> Result<Layout, ModuleError> {
        let mut l = Layout::default();
        for payload in Parser::new(0).parse_all(core) {
            match payload? {
                Payload::TypeSection(reader) => {
                    for group in reader {
                        for sub in group?.into_types() {
                            l.types.push(match &sub.composite_type.inner {
                                wasmparser::CompositeInnerType::Func(f) => {
                                    Some((f.params().to_vec(), f.results().to_vec()))
                                }
                                _ => None,
                            });
                        }
                    }
                }
                Payload::ImportSection(reader) => {
                    for import in reader {
                        if matches!(import?.ty, TypeRef::Func(_)) {
                            l.imported_funcs += 1;
                        }
                    }
                }
                Payload::FunctionSection(reader) => {
                    for ty in reader {
                        l.func_types.push(ty?);
                    }
                }
                Payload::ExportSection(reader) => {
                    for export in reader {
                        let export = export?;
                        if export.kind == ExternalKind::Func {
                            match export.name {
                                LEN_HOOK => l.len_hook = Some(export.index),
                                COPY_HOOK => l.copy_hook = Some(export.index),
                                _ => {}
                            }
                        }
                    }
                }
                Payload::DataCountSection { .. } => l.has_data_count = true,
                Payload::DataSection(reader) => l.data_segments = reader.count(),
                _ => {}
            }
        }
        Ok(l)
    }

    fn signature(&self, func: u32) -> Option<&(Vec<ValType>, Vec<ValType>)> {
        let defined = func.checked_sub(self.imported_funcs)?;
        let ty = *self.func_types.get(defined as usize)?;
        self.types.get(ty as usize)?.as_ref()
    }

    fn hook(
        &self,
        func: Option<u32>,
        name: &'static str,
        params: &[ValType],
        results: &[ValType],
    ) -> Result<u32, ModuleError> {
        let func = func.ok_or(ModuleError::MissingHook(name))?;
        match self.signature(func) {
            Some((p, r)) if p == params && r == results => Ok(func),
            _ => Err(ModuleError::MissingHook(name)),
        }
    }
}

/// Returns `core` with `image` embedded and the hooks rewritten (see the module docs).
pub fn embed_image(core: &[u8], image: &[u8]) -> Result<Vec<u8>, ModuleError> {
    let layout = Layout::read(core)?;
    let len_hook = layout.hook(layout.len_hook, LEN_HOOK, &[], &[ValType::I32])?;
    let copy_hook = layout.hook(layout.copy_hook, COPY_HOOK, &[ValType::I32], &[])?;
    let len = i32::try_from(image.len())
        .ok()
        .filter(|&n| n < (1 << 30))
        .ok_or(ModuleError::ImageTooLarge(image.len()))?;
    let segment = layout.data_segments;

    let mut len_body = Function::new([]);
    len_body.instruction(&Instruction::I32Const(len));
    len_body.instruction(&Instruction::End);
    let mut copy_body = Function::new([]);
    copy_body.instruction(&Instruction::LocalGet(0));
    copy_body.instruction(&Instruction::I32Const(0));
    copy_body.instruction(&Instruction::I32Const(len));
    copy_body.instruction(&Instruction::MemoryInit {
        mem: 0,
        data_index: segment,
    });
    copy_body.instruction(&Instruction::End);

    let mut module = wasm_encoder::Module::new();
    let mut code: Option<(CodeSection, u32)> = None;
    let mut next_func = layout.imported_funcs;
    let mut data_written = false;
    for payload in Parser::new(0).parse_all(core) {
        match payload? {
            Payload::Version { .. } | Payload::End(_) => {}
            Payload::ExportSection(reader) => {
                let mut exports = ExportSection::new();
                for export in reader {
                    let export = export?;
                    if export.kind == ExternalKind::Func
                        && (export.index == len_hook || export.index == copy_hook)
                    {
                        continue;
                    }
                    let kind = match export.kind {
                        ExternalKind::Func => ExportKind::Func,
                        ExternalKind::Table => ExportKind::Table,
                        ExternalKind::Memory => ExportKind::Memory,
                        ExternalKind::Global => ExportKind::Global,
                        ExternalKind::Tag => ExportKind::Tag,
                    };
                    exports.export(export.name, kind, export.index);
                }
                module.section(&exports);
            }
            Payload::DataCountSection { count, .. } => {
                module.section(&DataCountSection { count: count + 1 });
            }
            Payload::CodeSectionStart { count, .. } => {
                if !layout.has_data_count {
                    module.section(&DataCountSection { count: segment + 1 });
                }
                code = Some((CodeSection::new(), count));
            }
            Payload::CodeSectionEntry(body) => {
                if let Some((section, remaining)) = code.as_mut() {
                    if next_func == len_hook {
                        section.function(&len_body);
                    } else if next_func == copy_hook {
                        section.function(&copy_body);
                    } else {
                        section.raw(&core[body.range()]);
                    }
                    next_func += 1;
                    *remaining -= 1;
                    if *remaining == 0 {
                        module.section(&*section);
                        code = None;
                    }
                }
            }
            Payload::DataSection(reader) => {
                let mut data = DataSection::new();
                for segment in reader {
                    data.raw(&core[segment?.range]);
                }
                data.passive(image.iter().copied());
                module.section(&data);
                data_written = true;
            }
            Payload::CustomSection(custom) => {
                module.section(&CustomSection {
                    name: custom.name().into(),
                    data: custom.data().into(),
                });
            }
            other => {
                if let Some((id, range)) = other.as_section() {
                    module.section(&RawSection {
                        id,
                        data: &core[range],
                    });
                }
            }
        }
    }
    if !data_written {
        let mut data = DataSection::new();
        data.passive(image.iter().copied());
        module.section(&data);
    }
    Ok(module.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUEST_LIKE: &str = r#"(module
        (memory (export "memory") 1)
        (data (i32.const 16) "static")
        (func (export "linkward_image_len") (result i32) (i32.const 0))
        (func (export "linkward_image_copy") (param i32))
        (func (export "other") (result i32) (call 0)))"#;

    fn exports(module: &[u8]) -> Vec<String> {
        let mut names = Vec::new();
        for payload in Parser::new(0).parse_all(module) {
            if let Payload::ExportSection(r) = payload.unwrap() {
                names.extend(r.into_iter().map(|e| e.unwrap().name.to_string()));
            }
        }
        names
    }

    #[test]
    fn embedding_appends_a_passive_segment_and_hides_the_hooks() {
        let core = wat::parse_str(GUEST_LIKE).unwrap();
        let patched = embed_image(&core, b"rule image bytes").unwrap();
        wasmparser::Validator::new().validate_all(&patched).unwrap();
        assert_eq!(exports(&patched), vec!["memory", "other"]);
        let mut segments = Vec::new();
        for payload in Parser::new(0).parse_all(&patched) {
            if let Payload::DataSection(r) = payload.unwrap() {
                for d in r {
                    let d = d.unwrap();
                    segments.push((
                        matches!(d.kind, wasmparser::DataKind::Passive),
                        d.data.to_vec(),
                    ));
                }
            }
        }
        assert_eq!(
            segments,
            vec![
                (false, b"static".to_vec()),
                (true, b"rule image bytes".to_vec())
            ]
        );
    }

    #[test]
    fn a_module_without_hooks_or_with_wrong_signatures_is_refused() {
        let no_hooks = wat::parse_str("(module (memory 1))").unwrap();
        assert!(matches!(
            embed_image(&no_hooks, b"x"),
            Err(ModuleError::MissingHook(LEN_HOOK))
        ));
        let wrong = wat::parse_str(
            r#"(module (memory 1)
                (func (export "linkward_image_len") (result i64) (i64.const 0))
                (func (export "linkward_image_copy") (param i32)))"#,
        )
        .unwrap();
        assert!(matches!(
            embed_image(&wrong, b"x"),
            Err(ModuleError::MissingHook(LEN_HOOK))
        ));
        assert!(matches!(
            embed_image(b"junk", b"x"),
            Err(ModuleError::Parse(_))
        ));
    }

    #[test]
    fn the_generic_guest_carries_the_hooks() {
        let patched = embed_image(GENERIC_GUEST, b"img").unwrap();
        assert!(
            !exports(&patched)
                .iter()
                .any(|e| e.starts_with("linkward_image"))
        );
    }
}
