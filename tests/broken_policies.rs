//! Table-driven checks of the policy front end against two corpora:
//!
//! - `tests/policies/broken/*.toml`: each file has one problem (one file has several) and
//!   says what must be reported in `# expect: LINE:COL: text` lines. Checking it must give
//!   no policy, exactly the expected errors (each at its line and column, its message
//!   containing the text) and no panic.
//! - `tests/policies/lint/*.toml`: valid policies with `# expect-warning: LINE:COL: text`
//!   lines. Checking must give a policy, no error and exactly the expected warnings.
//!
//! The examples are checked too: they must stay valid, with only the warnings their
//! comments admit to.

use linkward_policy::diagnostic::{Diagnostic, Level};
use linkward_policy::validate::{Checked, check_source};
use std::path::{Path, PathBuf};

struct Expectation {
    line: u32,
    column: u32,
    text: String,
}

fn corpus(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

/// Parses the `# <marker> LINE:COL: text` lines of a corpus file.
fn expectations(path: &Path, text: &str, marker: &str) -> Vec<Expectation> {
    text.lines()
        .filter_map(|line| line.strip_prefix(marker))
        .map(|rest| {
            let parsed = (|| {
                let (position, text) = rest.trim().split_once(": ")?;
                let (line, column) = position.split_once(':')?;
                Some(Expectation {
                    line: line.parse().ok()?,
                    column: column.parse().ok()?,
                    text: text.to_owned(),
                })
            })();
            parsed
                .unwrap_or_else(|| panic!("{}: malformed `{marker}` line: {rest}", path.display()))
        })
        .collect()
}

fn check(path: &Path) -> (String, Checked) {
    let text = std::fs::read_to_string(path).expect("corpus file is readable");
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let checked = check_source(&name, &text, path.parent());
    (text, checked)
}

fn rendered(text: &str, diagnostics: &[&Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| d.render(text))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts that `found` holds exactly one diagnostic per expectation.
fn assert_matches(path: &Path, text: &str, expected: &[Expectation], found: &[&Diagnostic]) {
    let mut unmatched: Vec<&Diagnostic> = found.to_vec();
    for e in expected {
        let position = unmatched.iter().position(|d| {
            d.location.line == e.line
                && d.location.column == e.column
                && d.message.contains(&e.text)
        });
        match position {
            Some(i) => {
                unmatched.remove(i);
            }
            None => panic!(
                "{}: expected a diagnostic at {}:{} containing {:?}; got:\n{}",
                path.display(),
                e.line,
                e.column,
                e.text,
                rendered(text, found)
            ),
        }
    }
    assert!(
        unmatched.is_empty(),
        "{}: unexpected diagnostics:\n{}",
        path.display(),
        rendered(text, &unmatched)
    );
}

#[test]
fn broken_policies_report_each_problem_where_it_is() {
    let files = corpus("tests/policies/broken");
    assert!(files.len() >= 32, "only {} broken policies", files.len());
    for path in &files {
        let (text, checked) = check(path);
        let expected = expectations(path, &text, "# expect:");
        assert!(
            !expected.is_empty(),
            "{}: no `# expect:` line",
            path.display()
        );
        assert!(checked.policy.is_none(), "{}: accepted", path.display());
        let errors: Vec<&Diagnostic> = checked
            .diagnostics
            .iter()
            .filter(|d| d.level == Level::Error)
            .collect();
        assert_matches(path, &text, &expected, &errors);
        for d in &checked.diagnostics {
            // Every diagnostic must render against its source without trouble.
            assert!(d.render(&text).starts_with(&d.to_string()));
        }
    }
}

#[test]
fn lint_corpus_warns_where_expected() {
    let files = corpus("tests/policies/lint");
    assert!(!files.is_empty());
    for path in &files {
        let (text, checked) = check(path);
        let expected = expectations(path, &text, "# expect-warning:");
        let errors: Vec<&Diagnostic> = checked
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .collect();
        assert!(
            errors.is_empty(),
            "{}: errors:\n{}",
            path.display(),
            rendered(&text, &errors)
        );
        assert!(checked.policy.is_some(), "{}: no policy", path.display());
        let warnings: Vec<&Diagnostic> = checked.diagnostics.iter().collect();
        assert_matches(path, &text, &expected, &warnings);
    }
}

#[test]
fn examples_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (example, warnings) in [
        ("examples/fabrikam.toml", 2),
        ("examples/contoso-servicetags.toml", 1),
    ] {
        let path = root.join(example);
        let (text, checked) = check(&path);
        let all: Vec<&Diagnostic> = checked.diagnostics.iter().collect();
        assert!(
            checked.policy.is_some(),
            "{example}:\n{}",
            rendered(&text, &all)
        );
        assert_eq!(all.len(), warnings, "{example}:\n{}", rendered(&text, &all));
        assert!(all.iter().all(|d| d.code == "service-tag-reliance"));
    }
}

#[test]
fn fabrikam_cases_parse_and_cover_every_finding_kind() {
    use linkward_guest::vocab::FindingKind;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/policies/fabrikam-cases.toml");
    let text = std::fs::read_to_string(&path).expect("case file is readable");
    let cases =
        linkward_policy::cases::parse_cases("fabrikam-cases.toml", &text).unwrap_or_else(|d| {
            panic!(
                "{}",
                d.iter()
                    .map(|d| d.render(&text))
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
    assert!(cases.len() >= 12);
    for kind in FindingKind::ALL {
        let positive = cases.iter().filter(|c| c.expect.contains(&kind)).count();
        assert!(positive > 0, "no case expects {kind}");
    }
    let negatives = cases.iter().filter(|c| c.expect.is_empty()).count();
    let positives = cases.len() - negatives;
    assert!(
        negatives >= positives - 1,
        "{negatives} negative cases for {positives} positive ones"
    );
}
