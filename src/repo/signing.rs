//! Ed25519 keys and signatures for repository indexes. Keys and
//! signatures are stored as base64 text, so they can be pasted into
//! modman.toml and looked at with `cat`.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

/// A key problem, naming the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {problem}")]
    File { path: String, problem: String },
    #[error("the signature {0}")]
    BadSignature(&'static str),
}

fn file_error(path: &Path, problem: impl Into<String>) -> KeyError {
    KeyError::File {
        path: path.display().to_string(),
        problem: problem.into(),
    }
}

/// Creates a new private key at `path` (mode 0600; an existing file is
/// never overwritten) and returns it.
pub fn generate(path: &Path) -> Result<SigningKey, KeyError> {
    let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                file_error(path, "exists already; modman never overwrites a key: move it away or choose another path")
            }
            _ => file_error(path, format!("cannot create: {e}")),
        })?;
    writeln!(file, "{}", BASE64.encode(key.to_bytes()))
        .and_then(|()| file.sync_all())
        .map_err(|e| file_error(path, format!("cannot write: {e}")))?;
    Ok(key)
}

/// Reads a private key written by [`generate`]. A key readable by group or
/// others is refused: whoever reads it can sign indexes.
pub fn read_private(path: &Path) -> Result<SigningKey, KeyError> {
    let metadata = std::fs::metadata(path)
        .map_err(|e| file_error(path, format!("cannot read the key: {e}")))?;
    if metadata.permissions().mode() & 0o077 != 0 {
        return Err(file_error(
            path,
            format!(
                "the private key is readable by others (mode {:o}); run chmod 600 on it",
                metadata.permissions().mode() & 0o777
            ),
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| file_error(path, format!("cannot read the key: {e}")))?;
    let bytes: [u8; 32] = BASE64
        .decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            file_error(
                path,
                "not a modman private key (base64 of 32 bytes, as `modman repo keygen` writes)",
            )
        })?;
    Ok(SigningKey::from_bytes(&bytes))
}

/// The public key as modman.toml's `public_key` takes it.
pub fn public_key_text(key: &VerifyingKey) -> String {
    BASE64.encode(key.to_bytes())
}

/// The signature file's content for `message`.
pub fn sign(key: &SigningKey, message: &[u8]) -> String {
    format!("{}\n", BASE64.encode(key.sign(message).to_bytes()))
}

/// Checks a signature file's content against `message`.
pub fn verify(key: &VerifyingKey, message: &[u8], signature: &[u8]) -> Result<(), KeyError> {
    let text = std::str::from_utf8(signature).map_err(|_| KeyError::BadSignature("is not text"))?;
    let bytes: [u8; 64] = BASE64
        .decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(KeyError::BadSignature("is not base64 of 64 bytes"))?;
    key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&bytes))
        .map_err(|_| KeyError::BadSignature("does not match the index and the public key"))
}

/// Checks a signature against each trusted key: a repository rotating
/// its key is trusted under the old and the new one. Returns the key
/// that verified it.
pub fn verify_any<'a>(
    keys: &'a [VerifyingKey],
    message: &[u8],
    signature: &[u8],
) -> Result<&'a VerifyingKey, KeyError> {
    let mut outcome = Err(KeyError::BadSignature("has no key to check it against"));
    for key in keys {
        outcome = verify(key, message, signature).map(|()| key);
        if outcome.is_ok() {
            break;
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_signs_and_only_its_public_key_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let key = generate(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(read_private(&path).unwrap().to_bytes(), key.to_bytes());
        let public =
            crate::config::parse_public_key(&public_key_text(&key.verifying_key())).unwrap();

        let signature = sign(&key, b"index");
        verify(&public, b"index", signature.as_bytes()).unwrap();
        assert!(verify(&public, b"index!", signature.as_bytes()).is_err());
        let other = SigningKey::from_bytes(&[7; 32]).verifying_key();
        assert!(verify(&other, b"index", signature.as_bytes()).is_err());
        assert!(verify(&public, b"index", b"garbage").is_err());

        // Rotation: either trusted key will do, an untrusted one will not.
        let keys = [other, public];
        assert_eq!(
            verify_any(&keys, b"index", signature.as_bytes()).unwrap(),
            &public
        );
        assert!(verify_any(&[other], b"index", signature.as_bytes()).is_err());
        assert!(verify_any(&[], b"index", signature.as_bytes()).is_err());
    }

    #[test]
    fn keys_are_never_overwritten_or_read_when_exposed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        generate(&path).unwrap();
        let error = generate(&path).unwrap_err().to_string();
        assert!(error.contains("never overwrites"), "{error}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = read_private(&path).unwrap_err().to_string();
        assert!(error.contains("chmod 600"), "{error}");
    }
}
