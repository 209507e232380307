//! Saved cursors: `<spool>/cursors/<destination>` holds the log position
//! before which that destination has finished, as decimal text. Written to
//! a temporary file and renamed, so a crash leaves the old or the new value.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::SpoolError;

pub fn dir(spool: &Path) -> PathBuf {
    spool.join("cursors")
}

/// The saved cursor of each destination (`None`: never saved). Cursors of
/// destinations no longer configured are removed, so they hold nothing back.
pub fn load_all(
    spool: &Path,
    names: &[String],
) -> Result<HashMap<String, Option<u64>>, SpoolError> {
    let d = dir(spool);
    let mut out: HashMap<String, Option<u64>> = names.iter().map(|n| (n.clone(), None)).collect();
    let entries = std::fs::read_dir(&d).map_err(|e| SpoolError::io("list", &d, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| SpoolError::io("list", &d, e))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if name.ends_with(".tmp") {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        if !out.contains_key(&name) {
            tracing::info!(destination = %name, "spool: forgetting the cursor of a destination no longer configured");
            let _ = std::fs::remove_file(&path);
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| SpoolError::io("read", &path, e))?;
        match text.trim().parse::<u64>() {
            Ok(pos) => {
                out.insert(name, Some(pos));
            }
            Err(_) => tracing::warn!(
                destination = %name,
                path = %path.display(),
                "spool: unreadable cursor; the destination restarts from the oldest record"
            ),
        }
    }
    // An unreadable cursor restarts from the oldest record: more replays, no loss.
    for (name, pos) in &mut out {
        if pos.is_none() && dir(spool).join(name).exists() {
            *pos = Some(0);
        }
    }
    Ok(out)
}

/// Saves one cursor (tmp + rename; `sync` also fsyncs the file).
pub fn save(spool: &Path, name: &str, pos: u64, sync: bool) -> std::io::Result<()> {
    let d = dir(spool);
    let tmp = d.join(format!("{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    writeln!(f, "{pos}")?;
    if sync {
        f.sync_data()?;
    }
    std::fs::rename(&tmp, d.join(name))
}
