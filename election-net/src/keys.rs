//! Cluster keys: the key file format, `election keygen`, and the keyring a node signs and
//! verifies with.
//!
//! A key file is text, one key a line; blank lines and lines starting with `#` are ignored:
//!
//! ```text
//! # election cluster key; whoever holds it is a member. Keep it secret (mode 0600).
//! election-key-v1 <key id: 8 hex digits, not 00000000> <secret: 64 hex digits (32 bytes)>
//! ```
//!
//! A node's keyring is every key of every `--key-file`, in order; the first key signs what the
//! node sends, and any key of the ring verifies what it receives. Rotating without downtime is
//! memberlist's install → use → remove: (1) add the new key as a *second* line on every node and
//! send each node SIGHUP (it re-reads its key files); (2) move the new key to the *first* line
//! everywhere and SIGHUP again — nodes now sign with it, and the others still accept it;
//! (3) delete the old line everywhere and SIGHUP a last time.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The first word of every key line.
pub const KEY_TAG: &str = "election-key-v1";
/// Bytes of a key's secret.
pub const SECRET_LEN: usize = 32;

/// A key file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file cannot be read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not a key.
    #[error("key file {path}, line {line}: {problem}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// The file holds no key.
    #[error("key file {0} holds no key line ({KEY_TAG} <id> <secret>)")]
    Empty(PathBuf),
    /// Two keys share an id.
    #[error("key id {id:08x} appears twice ({path}, line {line})")]
    DuplicateId {
        /// The id.
        id: u32,
        /// The file of the second one.
        path: PathBuf,
        /// Its line.
        line: usize,
    },
    /// Others may read the file.
    #[error("key file {path} is readable by group or others (mode {mode:o}); chmod 600 it")]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
}

/// One cluster key: its id and the keyed MAC state.
#[derive(Clone)]
pub struct Key {
    id: u32,
    mac: Hmac<Sha256>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({:08x})", self.id)
    }
}

impl Key {
    /// A key from its id and secret.
    pub fn new(id: u32, secret: &[u8; SECRET_LEN]) -> Key {
        let mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
        Key { id, mac }
    }

    /// The key id datagrams carry.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// HMAC-SHA256 of `data`.
    pub fn tag(&self, data: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// Whether `tag` is the MAC of `data`, compared in constant time.
    pub fn verify(&self, data: &[u8], tag: &[u8]) -> bool {
        let mut mac = self.mac.clone();
        mac.update(data);
        mac.verify_slice(tag).is_ok()
    }
}

/// The keys a node accepts; the first one signs.
#[derive(Clone, Debug)]
pub struct Keyring {
    keys: Vec<Key>,
}

impl Keyring {
    /// A ring of these keys, the first one primary. `None` for an empty list.
    pub fn new(keys: Vec<Key>) -> Option<Keyring> {
        (!keys.is_empty()).then_some(Keyring { keys })
    }

    /// Reads every key of every file, in order. Each file must hold at least one key and must
    /// not be readable by group or others.
    pub fn load(paths: &[PathBuf]) -> Result<Keyring, KeyError> {
        let mut keys: Vec<Key> = Vec::new();
        for path in paths {
            for (line, key) in read_file(path)? {
                if keys.iter().any(|k| k.id == key.id) {
                    return Err(KeyError::DuplicateId {
                        id: key.id,
                        path: path.clone(),
                        line,
                    });
                }
                keys.push(key);
            }
        }
        Ok(Keyring { keys })
    }

    /// The key that signs.
    pub fn primary(&self) -> &Key {
        &self.keys[0]
    }

    /// The key with id `id`.
    pub fn find(&self, id: u32) -> Option<&Key> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// The key ids, primary first.
    pub fn ids(&self) -> Vec<String> {
        self.keys.iter().map(|k| format!("{:08x}", k.id)).collect()
    }
}

fn read_file(path: &Path) -> Result<Vec<(usize, Key)>, KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    check_private(path)?;
    let text = std::fs::read_to_string(path).map_err(io)?;
    let mut keys = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = parse_line(line).map_err(|problem| KeyError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            problem,
        })?;
        keys.push((i + 1, key));
    }
    if keys.is_empty() {
        return Err(KeyError::Empty(path.to_path_buf()));
    }
    Ok(keys)
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path) -> Result<(), KeyError> {
    Ok(())
}

fn parse_line(line: &str) -> Result<Key, String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [tag, id, secret] = fields[..] else {
        return Err(format!(
            "expected 3 fields \"{KEY_TAG} <id> <secret>\", found {}",
            fields.len()
        ));
    };
    if tag != KEY_TAG {
        return Err(format!("expected {KEY_TAG}, found {tag:?}"));
    }
    let id_bytes: [u8; 4] = hex::decode(id)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("key id {id:?} is not 8 hex digits"))?;
    let id = u32::from_be_bytes(id_bytes);
    if id == 0 {
        return Err("key id 00000000 is reserved for unkeyed datagrams".to_string());
    }
    let secret: [u8; SECRET_LEN] = hex::decode(secret)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("the secret is not {} hex digits", 2 * SECRET_LEN))?;
    Ok(Key::new(id, &secret))
}

/// `election keygen PATH`: writes a new random key to a new file of mode 0600 (never over an
/// existing file), and returns the key id.
pub fn generate(path: &Path) -> Result<u32, KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut random = [0u8; 4 + SECRET_LEN];
    let mut id = 0;
    while id == 0 {
        getrandom::fill(&mut random)
            .map_err(|e| io(std::io::Error::other(format!("no OS randomness: {e}"))))?;
        id = u32::from_be_bytes(random[..4].try_into().expect("4 bytes"));
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io)?;
    let text = format!(
        "# election cluster key, made by `election keygen`. Whoever holds it is a member: keep it\n\
         # secret (mode 0600). Several lines make a keyring; the first key signs.\n\
         {KEY_TAG} {id:08x} {}\n",
        hex::encode(&random[4..])
    );
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(label: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("election-keys-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn keygen_writes_a_private_key_that_loads_and_signs() {
        let d = dir("gen");
        let path = d.join("cluster.key");
        let id = generate(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert!(generate(&path).is_err(), "never overwrites a key");
        let ring = Keyring::load(std::slice::from_ref(&path)).unwrap();
        assert_eq!(ring.primary().id(), id);
        let tag = ring.primary().tag(b"hello");
        assert!(ring.primary().verify(b"hello", &tag));
        assert!(!ring.primary().verify(b"hellO", &tag));
        assert!(!ring.primary().verify(b"hello", &tag[..31]));
        let other = d.join("other.key");
        generate(&other).unwrap();
        let ring2 = Keyring::load(&[other, path]).unwrap();
        assert_ne!(ring2.primary().id(), id, "the first file's key signs");
        assert!(ring2.find(id).is_some());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn bad_key_files_name_file_line_and_problem() {
        use std::os::unix::fs::PermissionsExt;
        let d = dir("bad");
        let write = |name: &str, text: &str, mode: u32| {
            let p = d.join(name);
            std::fs::write(&p, text).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            p
        };
        let secret = "ab".repeat(32);
        let cases = [
            (
                write(
                    "short",
                    &format!("# c\n\n{KEY_TAG} 0000000a {}\n", &secret[..10]),
                    0o600,
                ),
                "line 3: the secret is not 64 hex digits",
            ),
            (
                write("zero", &format!("{KEY_TAG} 00000000 {secret}\n"), 0o600),
                "line 1: key id 00000000 is reserved",
            ),
            (
                write("word", "hello world\n", 0o600),
                "line 1: expected 3 fields",
            ),
            (write("empty", "# nothing\n", 0o600), "holds no key line"),
            (
                write("open", &format!("{KEY_TAG} 0000000a {secret}\n"), 0o644),
                "readable by group or others",
            ),
            (
                write(
                    "twice",
                    &format!("{KEY_TAG} 0000000a {secret}\n{KEY_TAG} 0000000a {secret}\n"),
                    0o600,
                ),
                "key id 0000000a appears twice",
            ),
        ];
        for (path, want) in cases {
            let err = Keyring::load(std::slice::from_ref(&path))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(want) && err.contains(&*path.to_string_lossy()),
                "{err}"
            );
        }
        let missing = Keyring::load(&[d.join("nope")]).unwrap_err().to_string();
        assert!(missing.contains("nope"), "{missing}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
