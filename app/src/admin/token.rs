//! Reading the admin token file: private, bounded, one token long enough not to be guessed.

/// The shortest admin token accepted: 32 bytes, as long as a random 256-bit secret written in base64 or hex
/// halves, so that guessing it through the (throttled) API is hopeless.
pub const MIN_TOKEN_BYTES: usize = 32;

/// The largest token file read.
const MAX_TOKEN_FILE_BYTES: u64 = 4096;

/// Reads the admin token from `path`: a private file (no access for group or others) holding one token of at
/// least [`MIN_TOKEN_BYTES`] without whitespace. Errors say why, never the token.
pub(crate) fn read_token(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mode = file
        .metadata()
        .map_err(|e| e.to_string())?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "mode {mode:04o} lets other users read the token; run `chmod 600` on it"
        ));
    }
    let mut bytes = Vec::new();
    file.take(MAX_TOKEN_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_TOKEN_FILE_BYTES {
        return Err(format!(
            "the file is larger than {MAX_TOKEN_FILE_BYTES} bytes; it should hold one token"
        ));
    }
    let text = String::from_utf8(bytes).map_err(|_| "the token is not UTF-8 text".to_owned())?;
    let token = text.trim();
    if token.is_empty() {
        return Err("the file is empty".into());
    }
    if token.chars().any(char::is_whitespace) {
        return Err("the token contains whitespace".into());
    }
    if token.len() < MIN_TOKEN_BYTES {
        return Err(format!(
            "the token is {} bytes; at least {MIN_TOKEN_BYTES} are needed (e.g. `openssl rand -hex 32`)",
            token.len()
        ));
    }
    Ok(token.to_owned())
}
