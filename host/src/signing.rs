//! Module signatures: who built this policy module, and is it the module they built?
//!
//! A host that hot-swaps whatever lands in a watched file trusts that file's writer
//! completely. An appliance that wants more gives the host a public key (`--trust-key`),
//! and the host then refuses every module that is not signed by the matching private key.
//!
//! # Format
//!
//! The signature is an ed25519 signature kept in a WebAssembly custom section named
//! [`SECTION_NAME`], appended as the **last** section of the module (a component or a core
//! module). It covers every byte before that section, so the module's text, its embedded
//! policy image and its metadata are all covered, and a custom section is ignored by
//! every WebAssembly engine: a signed module loads anywhere an unsigned one does. The
//! section's payload is
//!
//! | bytes | content |
//! |---|---|
//! | 1 | format version, `1` |
//! | 32 | the signer's ed25519 public key |
//! | 64 | the signature over [`SIGNING_CONTEXT`] followed by every byte before the section |
//!
//! The context string keeps a module signature from ever being mistaken for a signature
//! made with the same key for another purpose. Anything after the signature section would
//! be unsigned, so a signature section that is not last is refused, and so is a second
//! one. Signing a signed module replaces its signature.
//!
//! # Example
//!
//! ```
//! use linkward_host::signing::{SecretKey, sign, verify};
//!
//! // The smallest component: the header alone.
//! let module = b"\0asm\x0d\x00\x01\x00".to_vec();
//! let key = SecretKey::from_seed([7; 32]);
//! let signed = sign(&module, &key)?;
//! verify(&signed, &key.public_key())?;
//! assert!(verify(&module, &key.public_key()).is_err());
//! # Ok::<(), linkward_host::signing::SigningError>(())
//! ```

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// The custom section that holds the signature.
pub const SECTION_NAME: &str = "linkward-signature";

/// Prefixed to the signed bytes, so the signature means "this is a linkward module".
pub const SIGNING_CONTEXT: &[u8] = b"linkward-module-signature-v1\0";

const FORMAT_VERSION: u8 = 1;
const PAYLOAD_LEN: usize = 1 + 32 + 64;
const HEADER_LEN: usize = 8;
const MAGIC: &[u8; 4] = b"\0asm";

/// Why a module could not be signed or its signature was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SigningError {
    /// The bytes do not start with the WebAssembly header.
    #[error(
        "not a WebAssembly module or component: it does not start with the 8-byte `\\0asm` header"
    )]
    NotWebAssembly,
    /// The module ends in the middle of a section header or section.
    #[error("the module is truncated: it ends inside {what} at byte offset {offset}")]
    Truncated { offset: usize, what: &'static str },
    /// A section header's size field is not a valid 32-bit LEB128 number.
    #[error("invalid section size at byte offset {offset}")]
    BadSectionSize { offset: usize },
    /// The module carries no signature section.
    #[error("the module is not signed: it has no `{SECTION_NAME}` section")]
    Unsigned,
    /// Bytes follow the signature section, which they would not be covered by it.
    #[error(
        "the `{SECTION_NAME}` section at byte offset {offset} is not the last section: \
         the bytes after it are not covered by the signature"
    )]
    NotLast { offset: usize },
    /// The signature section does not have the expected layout.
    #[error("the `{SECTION_NAME}` section at byte offset {offset} is malformed: {why}")]
    MalformedSection { offset: usize, why: String },
    /// The module is signed, but by another key than the trusted one.
    #[error("the module is signed by key {signed_by}, not by the trusted key {trusted}")]
    WrongKey { signed_by: String, trusted: String },
    /// The signature does not match the module's bytes.
    #[error(
        "the signature by key {key} does not match the module's bytes \
         (the module was changed after it was signed)"
    )]
    BadSignature { key: String },
    /// A key given as text could not be read.
    #[error("invalid {what}: {why}")]
    BadKey { what: &'static str, why: String },
    /// The system's random number generator failed.
    #[error("cannot generate a key: the system random number generator failed: {0}")]
    Random(String),
}

/// An ed25519 signing key. Its `Debug` output never shows the key.
#[derive(Clone)]
pub struct SecretKey {
    key: SigningKey,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

impl SecretKey {
    /// A new key from the operating system's random number generator.
    pub fn generate() -> Result<SecretKey, SigningError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| SigningError::Random(e.to_string()))?;
        Ok(SecretKey::from_seed(seed))
    }

    /// The key with this 32-byte seed (what a key file stores).
    pub fn from_seed(seed: [u8; 32]) -> SecretKey {
        SecretKey {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// Reads a seed written as 64 hexadecimal digits; surrounding whitespace is ignored.
    pub fn from_hex(text: &str) -> Result<SecretKey, SigningError> {
        Ok(SecretKey::from_seed(hex32(text, "private key")?))
    }

    /// The seed as 64 lowercase hexadecimal digits.
    pub fn to_hex(&self) -> String {
        to_hex(&self.key.to_bytes())
    }

    /// The public key that checks this key's signatures.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            key: self.key.verifying_key(),
        }
    }
}

/// An ed25519 public key, shown and read as 64 hexadecimal digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
}

impl PublicKey {
    /// Reads a key written as 64 hexadecimal digits; surrounding whitespace is ignored.
    pub fn from_hex(text: &str) -> Result<PublicKey, SigningError> {
        PublicKey::from_bytes(&hex32(text, "public key")?)
    }

    /// The key from its 32-byte encoding; not every 32-byte string is a curve point.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<PublicKey, SigningError> {
        VerifyingKey::from_bytes(bytes)
            .map(|key| PublicKey { key })
            .map_err(|e| SigningError::BadKey {
                what: "public key",
                why: e.to_string(),
            })
    }

    /// The 32-byte encoding.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The key as 64 lowercase hexadecimal digits.
    pub fn to_hex(&self) -> String {
        to_hex(&self.key.to_bytes())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

impl FromStr for PublicKey {
    type Err = SigningError;

    fn from_str(s: &str) -> Result<PublicKey, SigningError> {
        PublicKey::from_hex(s)
    }
}

/// What a module says about its signature, checked against the key it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignatureStatus {
    /// No signature section.
    Unsigned,
    /// Signed by `key`, and the signature matches the module.
    Valid { key: PublicKey },
    /// Signed by `key`, but the module changed since.
    Invalid { key: PublicKey },
}

/// Where the signature section is, if there is one.
struct Located<'a> {
    /// Offset of the section's id byte: the signed bytes are everything before it.
    offset: usize,
    payload: &'a [u8],
}

/// Signs `module` with `key`: returns the module with a signature section appended,
/// replacing the signature it had.
pub fn sign(module: &[u8], key: &SecretKey) -> Result<Vec<u8>, SigningError> {
    let body = match locate(module)? {
        Some(found) => module.get(..found.offset).unwrap_or(module),
        None => module,
    };
    let signature = key.key.sign(&message(body));
    let mut payload = Vec::with_capacity(PAYLOAD_LEN);
    payload.push(FORMAT_VERSION);
    payload.extend_from_slice(&key.key.verifying_key().to_bytes());
    payload.extend_from_slice(&signature.to_bytes());

    let mut content = Vec::with_capacity(PAYLOAD_LEN + SECTION_NAME.len() + 2);
    write_leb(&mut content, SECTION_NAME.len() as u32);
    content.extend_from_slice(SECTION_NAME.as_bytes());
    content.extend_from_slice(&payload);

    let mut out = Vec::with_capacity(body.len() + content.len() + 6);
    out.extend_from_slice(body);
    out.push(0);
    write_leb(&mut out, content.len() as u32);
    out.extend_from_slice(&content);
    Ok(out)
}

/// Checks that `module` is signed by `trusted` and unchanged since.
pub fn verify(module: &[u8], trusted: &PublicKey) -> Result<(), SigningError> {
    match signature_status(module)? {
        SignatureStatus::Unsigned => Err(SigningError::Unsigned),
        SignatureStatus::Valid { key } | SignatureStatus::Invalid { key } if key != *trusted => {
            Err(SigningError::WrongKey {
                signed_by: key.to_hex(),
                trusted: trusted.to_hex(),
            })
        }
        SignatureStatus::Valid { .. } => Ok(()),
        SignatureStatus::Invalid { key } => Err(SigningError::BadSignature { key: key.to_hex() }),
    }
}

/// Reads the signature of `module`, if any, and checks it against the key it names
/// (which says who signed it, not whether that signer is trusted: see [`verify`]).
pub fn signature_status(module: &[u8]) -> Result<SignatureStatus, SigningError> {
    let Some(found) = locate(module)? else {
        return Ok(SignatureStatus::Unsigned);
    };
    let malformed = |why: String| SigningError::MalformedSection {
        offset: found.offset,
        why,
    };
    if found.payload.len() != PAYLOAD_LEN {
        return Err(malformed(format!(
            "its payload is {} bytes, expected {PAYLOAD_LEN}",
            found.payload.len()
        )));
    }
    let (version, rest) = found
        .payload
        .split_first()
        .ok_or_else(|| malformed("empty payload".into()))?;
    if *version != FORMAT_VERSION {
        return Err(malformed(format!(
            "format version {version}, this host reads version {FORMAT_VERSION}"
        )));
    }
    let (key_bytes, signature_bytes) = rest
        .split_at_checked(32)
        .ok_or_else(|| malformed("too short for a key and a signature".into()))?;
    let key_bytes: [u8; 32] = key_bytes
        .try_into()
        .map_err(|_| malformed("the key is not 32 bytes".into()))?;
    let key = PublicKey::from_bytes(&key_bytes)
        .map_err(|_| malformed("the signer's key is not a valid ed25519 key".into()))?;
    let signature = Signature::from_slice(signature_bytes)
        .map_err(|_| malformed("the signature is not 64 bytes".into()))?;
    let body = module.get(..found.offset).unwrap_or(module);
    Ok(match key.key.verify_strict(&message(body), &signature) {
        Ok(()) => SignatureStatus::Valid { key },
        Err(_) => SignatureStatus::Invalid { key },
    })
}

/// The module without its signature section (the bytes the signature covers).
pub fn unsigned_body(module: &[u8]) -> Result<&[u8], SigningError> {
    Ok(match locate(module)? {
        Some(found) => module.get(..found.offset).unwrap_or(module),
        None => module,
    })
}

fn message(body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNING_CONTEXT.len() + body.len());
    m.extend_from_slice(SIGNING_CONTEXT);
    m.extend_from_slice(body);
    m
}

/// Walks the top-level sections and finds the signature section, checking that it is
/// the last one and the only one.
fn locate(module: &[u8]) -> Result<Option<Located<'_>>, SigningError> {
    if module.len() < HEADER_LEN || !module.starts_with(MAGIC) {
        return Err(SigningError::NotWebAssembly);
    }
    let mut offset = HEADER_LEN;
    let mut found: Option<Located<'_>> = None;
    while offset < module.len() {
        let section_start = offset;
        if let Some(previous) = &found {
            return Err(SigningError::NotLast {
                offset: previous.offset,
            });
        }
        let id = module.get(offset).copied().ok_or(SigningError::Truncated {
            offset,
            what: "a section id",
        })?;
        offset += 1;
        let (size, used) = read_leb(module, offset)?;
        offset += used;
        let end = offset
            .checked_add(size as usize)
            .filter(|&end| end <= module.len())
            .ok_or(SigningError::Truncated {
                offset: module.len(),
                what: "a section",
            })?;
        if id == 0 {
            let content = module.get(offset..end).unwrap_or_default();
            let (name_len, used) =
                read_leb(content, 0).map_err(|_| SigningError::MalformedSection {
                    offset: section_start,
                    why: "custom section without a readable name".into(),
                })?;
            let name = content
                .get(used..used.saturating_add(name_len as usize))
                .ok_or(SigningError::Truncated {
                    offset: end,
                    what: "a custom section name",
                })?;
            if name == SECTION_NAME.as_bytes() {
                let payload = content.get(used + name_len as usize..).unwrap_or_default();
                found = Some(Located {
                    offset: section_start,
                    payload,
                });
            }
        }
        offset = end;
    }
    Ok(found)
}

/// Reads an unsigned 32-bit LEB128 number at `offset`: (value, bytes used).
fn read_leb(bytes: &[u8], offset: usize) -> Result<(u32, usize), SigningError> {
    let mut value: u32 = 0;
    for i in 0..5 {
        let byte = bytes
            .get(offset + i)
            .copied()
            .ok_or(SigningError::Truncated {
                offset: offset + i,
                what: "a section size",
            })?;
        let bits = u32::from(byte & 0x7f);
        if i == 4 && bits > 0x0f {
            return Err(SigningError::BadSectionSize { offset });
        }
        value |= bits << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(SigningError::BadSectionSize { offset })
}

fn write_leb(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

fn hex32(text: &str, what: &'static str) -> Result<[u8; 32], SigningError> {
    let text = text.trim();
    let bad = |why: String| SigningError::BadKey { what, why };
    if text.len() != 64 {
        return Err(bad(format!(
            "expected 64 hexadecimal digits, found {} characters",
            text.chars().count()
        )));
    }
    let mut out = [0u8; 32];
    for (i, (slot, pair)) in out
        .iter_mut()
        .zip(text.as_bytes().chunks_exact(2))
        .enumerate()
    {
        let digit = |c: u8, at: usize| {
            char::from(c).to_digit(16).map(|d| d as u8).ok_or_else(|| {
                bad(format!(
                    "`{}` at position {} is not a hexadecimal digit",
                    char::from(c),
                    at + 1
                ))
            })
        };
        let (hi, lo) = match pair {
            [hi, lo] => (digit(*hi, 2 * i)?, digit(*lo, 2 * i + 1)?),
            _ => return Err(bad("odd number of digits".into())),
        };
        *slot = (hi << 4) | lo;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00";

    /// A component with one custom section `note` holding "hi".
    fn with_note() -> Vec<u8> {
        let mut m = EMPTY_COMPONENT.to_vec();
        m.extend_from_slice(&[0, 7, 4, b'n', b'o', b't', b'e', b'h', b'i']);
        m
    }

    #[test]
    fn sign_appends_one_section_of_the_documented_layout() {
        let key = SecretKey::from_seed([1; 32]);
        let module = with_note();
        let signed = sign(&module, &key).unwrap();
        assert_eq!(&signed[..module.len()], &module[..]);
        let section = &signed[module.len()..];
        // id 0, size 1 + 18 + 97 = 116, name length 18, name, payload.
        assert_eq!(section[0], 0);
        assert_eq!(section[1], 116);
        assert_eq!(section[2], 18);
        assert_eq!(&section[3..21], SECTION_NAME.as_bytes());
        assert_eq!(section[21], 1);
        assert_eq!(&section[22..54], &key.public_key().to_bytes());
        assert_eq!(section.len(), 21 + 97);
        assert_eq!(
            signature_status(&signed).unwrap(),
            SignatureStatus::Valid {
                key: key.public_key()
            }
        );
    }

    #[test]
    fn resigning_replaces_the_signature() {
        let a = SecretKey::from_seed([1; 32]);
        let b = SecretKey::from_seed([2; 32]);
        let once = sign(&with_note(), &a).unwrap();
        let twice = sign(&once, &b).unwrap();
        assert_eq!(twice.len(), once.len());
        verify(&twice, &b.public_key()).unwrap();
        assert_eq!(unsigned_body(&twice).unwrap(), &with_note()[..]);
    }

    #[test]
    fn verify_refuses_unsigned_wrong_key_and_tampered_modules() {
        let key = SecretKey::from_seed([3; 32]);
        let other = SecretKey::from_seed([4; 32]);
        let signed = sign(&with_note(), &key).unwrap();
        assert_eq!(
            verify(&with_note(), &key.public_key()),
            Err(SigningError::Unsigned)
        );
        assert_eq!(
            verify(&signed, &other.public_key()),
            Err(SigningError::WrongKey {
                signed_by: key.public_key().to_hex(),
                trusted: other.public_key().to_hex(),
            })
        );
        let mut tampered = signed.clone();
        tampered[16] = b'H';
        assert_eq!(
            verify(&tampered, &key.public_key()),
            Err(SigningError::BadSignature {
                key: key.public_key().to_hex()
            })
        );
    }

    #[test]
    fn a_section_after_the_signature_is_refused() {
        let key = SecretKey::from_seed([5; 32]);
        let mut signed = sign(EMPTY_COMPONENT, &key).unwrap();
        signed.extend_from_slice(&[0, 3, 2, b'x', b'y']);
        assert_eq!(
            verify(&signed, &key.public_key()),
            Err(SigningError::NotLast { offset: 8 })
        );
    }

    #[test]
    fn damaged_modules_are_errors_not_panics() {
        assert_eq!(signature_status(b"\0as"), Err(SigningError::NotWebAssembly));
        assert_eq!(
            signature_status(b"GIF89a\0\0\0\0"),
            Err(SigningError::NotWebAssembly)
        );
        let mut cut = EMPTY_COMPONENT.to_vec();
        cut.extend_from_slice(&[1, 0x80]);
        assert_eq!(
            signature_status(&cut),
            Err(SigningError::Truncated {
                offset: 10,
                what: "a section size"
            })
        );
        let mut long = EMPTY_COMPONENT.to_vec();
        long.extend_from_slice(&[1, 50, 0]);
        assert_eq!(
            signature_status(&long),
            Err(SigningError::Truncated {
                offset: 11,
                what: "a section"
            })
        );
        let mut overflow = EMPTY_COMPONENT.to_vec();
        overflow.extend_from_slice(&[1, 0xff, 0xff, 0xff, 0xff, 0x7f]);
        assert_eq!(
            signature_status(&overflow),
            Err(SigningError::BadSectionSize { offset: 9 })
        );
        // Every prefix of a signed module is handled without panicking.
        let signed = sign(&with_note(), &SecretKey::from_seed([6; 32])).unwrap();
        for n in 0..signed.len() {
            let _ = signature_status(&signed[..n]);
        }
    }

    #[test]
    fn keys_round_trip_through_hex() {
        let key = SecretKey::from_seed([0xab; 32]);
        assert_eq!(key.to_hex(), "ab".repeat(32));
        let again = SecretKey::from_hex(&format!("  {}\n", key.to_hex())).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        let public: PublicKey = key.public_key().to_hex().parse().unwrap();
        assert_eq!(public, key.public_key());
        assert_eq!(
            PublicKey::from_hex("12"),
            Err(SigningError::BadKey {
                what: "public key",
                why: "expected 64 hexadecimal digits, found 2 characters".into()
            })
        );
        assert_eq!(
            SecretKey::from_hex(&format!("{}zz", "0".repeat(62))).map(|k| k.to_hex()),
            Err(SigningError::BadKey {
                what: "private key",
                why: "`z` at position 63 is not a hexadecimal digit".into()
            })
        );
        assert!(!format!("{key:?}").contains(&key.to_hex()));
    }

    #[test]
    fn generated_keys_differ() {
        let a = SecretKey::generate().unwrap();
        let b = SecretKey::generate().unwrap();
        assert_ne!(a.to_hex(), b.to_hex());
    }
}
