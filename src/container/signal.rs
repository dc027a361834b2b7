//! Signal names and numbers as `kill` accepts them (`KILL`, `SIGKILL`, `9`).

use std::str::FromStr;

use nix::sys::signal::Signal;

use crate::error::{Error, Result};

/// Parses a signal; names are case-insensitive, with or without `SIG`.
pub fn parse(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        let max = libc::SIGRTMAX();
        if n > 0 && n <= max {
            return Ok(n);
        }
        return Err(Error::msg(format!("unknown signal \"{s}\"")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    if let Some(rest) = name.strip_prefix("SIGRTMIN+") {
        if let Ok(k) = rest.parse::<i32>() {
            let n = libc::SIGRTMIN() + k;
            if n <= libc::SIGRTMAX() {
                return Ok(n);
            }
        }
    }
    Signal::from_str(&name)
        .map(|s| s as i32)
        .map_err(|_| Error::msg(format!("unknown signal \"{s}\"")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("KILL").unwrap(), 9);
        assert_eq!(parse("SIGKILL").unwrap(), 9);
        assert_eq!(parse("term").unwrap(), 15);
        assert_eq!(parse("9").unwrap(), 9);
        assert!(parse("FOO").is_err());
        assert!(parse("0").is_err());
        assert!(parse("65").is_err());
    }
}
