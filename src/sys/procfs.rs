//! Reads of `/proc` (no system call wrappers needed, but Linux-only).

/// Whether any live process other than `leader` belongs to process group
/// `pgid`, from `/proc/<pid>/stat` (field 5). Zombies count as gone: they
/// have ended and only wait for their parent.
pub(crate) fn group_has_members(pgid: libc::pid_t, leader: libc::pid_t) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<libc::pid_t>().ok()) else {
            continue;
        };
        if pid == leader {
            continue;
        }
        let Ok(stat) = std::fs::read(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some((state, pgrp)) = parse_stat(&stat) {
            if pgrp == pgid && state != b'Z' && state != b'X' {
                return true;
            }
        }
    }
    false
}

/// Returns (state, pgrp) from the text of `/proc/<pid>/stat`. The command
/// name in parentheses may itself contain spaces and parentheses, so parsing
/// starts after the last `)`.
fn parse_stat(stat: &[u8]) -> Option<(u8, libc::pid_t)> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(stat.get(close + 1..)?).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.bytes().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

#[cfg(test)]
mod tests {
    use super::parse_stat;

    #[test]
    fn stat_with_parentheses_in_the_name() {
        let line = b"1234 (a) b (c)) S 1 777 777 0 -1 4194304";
        assert_eq!(parse_stat(line), Some((b'S', 777)));
    }

    #[test]
    fn truncated_stat_is_none() {
        assert_eq!(parse_stat(b"12 (x) S 1"), None);
    }
}
