//! `keygen` and `sign`: the signing side of `--trust-key`.

use anyhow::{Context, bail};
use linkward_host::sandbox::{Limits, PolicyEngine};
use linkward_host::signing::{self, PublicKey, SecretKey};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Writes a new private key (64 hex digits, readable by its owner only) and prints its
/// public key on standard output, where a script can take it.
pub fn keygen(output: &Path, force: bool) -> anyhow::Result<ExitCode> {
    let key = SecretKey::generate()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(output).with_context(|| {
        if output.exists() && !force {
            format!("{} exists; use --force to replace it", output.display())
        } else {
            format!("cannot create {}", output.display())
        }
    })?;
    writeln!(file, "{}", key.to_hex())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", output.display()))?;
    println!("{}", key.public_key());
    eprintln!(
        "wrote the private key to {} (keep it secret); its public key is above",
        output.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Reads a private key file written by `keygen`.
pub fn read_secret_key(path: &Path) -> anyhow::Result<SecretKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read key file {}", path.display()))?;
    SecretKey::from_hex(&text).with_context(|| format!("key file {}", path.display()))
}

/// Reads a `--trust-key` value: 64 hex digits, or a file holding them.
pub fn read_trust_key(arg: &str) -> anyhow::Result<PublicKey> {
    if let Ok(key) = PublicKey::from_hex(arg) {
        return Ok(key);
    }
    let path = Path::new(arg);
    if !path.exists() {
        bail!("--trust-key {arg}: neither a public key (64 hex digits) nor a file");
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read trusted key file {arg}"))?;
    PublicKey::from_hex(&text).with_context(|| format!("trusted key file {arg}"))
}

/// Signs a module in place or into `output`. The module is loaded first: a module the
/// host would refuse anyway is not worth a signature. The result is written beside its
/// destination and renamed into place, so a host watching the file never reads half of it.
pub fn sign(key_path: &Path, module: &Path, output: Option<&PathBuf>) -> anyhow::Result<ExitCode> {
    let key = read_secret_key(key_path)?;
    let bytes =
        std::fs::read(module).with_context(|| format!("cannot read {}", module.display()))?;
    let engine = PolicyEngine::new(Limits::default())?;
    let loaded = engine
        .load(&bytes)
        .with_context(|| format!("module {} refused; not signing it", module.display()))?;
    let signed =
        signing::sign(&bytes, &key).with_context(|| format!("cannot sign {}", module.display()))?;
    let target = output.map_or(module, PathBuf::as_path);
    write_replacing(target, &signed)?;
    eprintln!(
        "signed {} (policy {} {}) with key {}",
        target.display(),
        loaded.policy_name(),
        loaded.version(),
        key.public_key()
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` to a temporary file in `target`'s directory, then renames it over
/// `target`.
fn write_replacing(target: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "module".into());
    let temp = target.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::File::create(&temp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&temp, target));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(e).with_context(|| format!("cannot write {}", target.display()));
    }
    Ok(())
}
