//! The files of an instance: configuration templates filled in
//! ([`render`]), files written with a mode ([`write_file`], [`set_mode`]),
//! and paths as the UTF-8 text configurations need ([`path_str`]).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::error::{fatal, StartError};

/// `chmod MODE PATH`.
pub(super) fn set_mode(path: &Path, mode: u32) -> Result<(), StartError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| fatal(&format!("chmod {}", path.display()), e))
}

/// Fills in `{{NAME}}` placeholders; every placeholder must be given.
pub(super) fn render(template: &str, vars: &[(&str, String)]) -> Result<String, StartError> {
    let mut text = template.to_string();
    for (name, value) in vars {
        text = text.replace(&format!("{{{{{name}}}}}"), value);
    }
    match text.find("{{") {
        Some(at) => Err(StartError::Fatal(format!(
            "template placeholder left unfilled: {}",
            text[at..].lines().next().unwrap_or_default()
        ))),
        None => Ok(text),
    }
}

/// Writes `contents` to `path`, then gives it `mode`.
pub(super) fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), StartError> {
    fs::write(path, contents).map_err(|e| fatal(&format!("writing {}", path.display()), e))?;
    set_mode(path, mode)
}

/// `path` as UTF-8 text, for a configuration file or a flag.
pub(super) fn path_str(path: &Path) -> Result<String, StartError> {
    path.to_str()
        .map(str::to_string)
        .ok_or_else(|| StartError::Fatal(format!("path is not UTF-8: {}", path.display())))
}
