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

/// Where the cgroup v2 hierarchy is mounted (the first `cgroup2` line of
/// `/proc/self/mountinfo`), and this process's cgroup in it (the `0::`
/// line of `/proc/self/cgroup`), joined: the directory a child cgroup is
/// made in. `Err` says which of the two is missing.
pub(crate) fn own_cgroup_dir() -> Result<std::path::PathBuf, String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
    let mount = cgroup2_mount(&info).ok_or("no cgroup v2 hierarchy is mounted")?;
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
    let rel = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("this process has no cgroup v2 membership (no 0:: line in /proc/self/cgroup)")?;
    Ok(std::path::Path::new(&mount).join(rel.trim_start_matches('/')))
}

/// The mount point of the first `cgroup2` file system in a mountinfo text
/// (field 5; the file system type follows the ` - ` separator). Octal
/// escapes (`\040` for a space) are decoded.
fn cgroup2_mount(info: &str) -> Option<String> {
    info.lines().find_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        if after.split(' ').next()? != "cgroup2" {
            return None;
        }
        Some(unescape(before.split(' ').nth(4)?))
    })
}

fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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
    use super::{cgroup2_mount, parse_stat};

    #[test]
    fn the_cgroup2_mount_is_found_among_others_and_unescaped() {
        let info = "22 1 0:21 / /sys rw,nosuid - sysfs sysfs rw\n\
            30 22 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
            41 31 0:38 / /sys/fs/cgroup/my\\040v2 rw,relatime shared:9 - cgroup2 cgroup2 rw\n";
        assert_eq!(cgroup2_mount(info).as_deref(), Some("/sys/fs/cgroup/my v2"));
        assert_eq!(
            cgroup2_mount("30 22 0:26 / /x rw - cgroup cgroup rw\n"),
            None
        );
    }

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
