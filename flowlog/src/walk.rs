//! Listing the blobs Azure writes flow logs to, in time order.

use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::error::WalkError;

/// The hour (or minute) a blob covers, from its path: Azure writes
/// `.../y=2024/m=05/d=01/h=10/m=00/macAddress=.../PT1H.json`.
///
/// Missing parts are `None`, which sorts first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct BlobTime([Option<u32>; 5]);

impl BlobTime {
    fn of(relative: &Path) -> BlobTime {
        let mut parts = [None; 5];
        for component in relative.components() {
            let Component::Normal(name) = component else {
                continue;
            };
            let Some((key, value)) = name.to_str().and_then(|name| name.split_once('=')) else {
                continue;
            };
            let Ok(value) = value.parse::<u32>() else {
                continue;
            };
            // `m` is the month after `y` and the minute after `h`.
            let slot = match key {
                "y" => 0,
                "m" if parts[3].is_some() => 4,
                "m" => 1,
                "d" => 2,
                "h" => 3,
                _ => continue,
            };
            if let Some(part) = parts.get_mut(slot) {
                *part = Some(value);
            }
        }
        BlobTime(parts)
    }
}

/// Lists every `*.json` file under `dir` (at any depth), in the time order
/// of the Azure blob layout.
///
/// Files are ordered by the `y=`, `m=`, `d=`, `h=` and `m=` (minute) folders
/// in their path below `dir`, then by path; files without such folders come
/// first, by path. Symbolic links to files are followed, links to
/// directories are not (a link cycle could otherwise make the walk endless).
///
/// ```no_run
/// for blob in linkward_flowlog::walk_blob_dir("insights-logs-flowlogflowevent")? {
///     println!("{}", blob.display());
/// }
/// # Ok::<(), linkward_flowlog::WalkError>(())
/// ```
pub fn walk_blob_dir(dir: impl AsRef<Path>) -> Result<Vec<PathBuf>, WalkError> {
    let root = dir.as_ref();
    let mut found: Vec<(BlobTime, PathBuf)> = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = fs::read_dir(&current).map_err(|err| WalkError::new(current.clone(), err))?;
        for entry in entries {
            let entry = entry.map_err(|err| WalkError::new(current.clone(), err))?;
            let path = entry.path();
            let kind = entry
                .file_type()
                .map_err(|err| WalkError::new(path.clone(), err))?;
            if kind.is_dir() {
                pending.push(path);
                continue;
            }
            let is_json = path
                .extension()
                .is_some_and(|ext| ext.eq_ignore_ascii_case("json"));
            if !is_json {
                continue;
            }
            let is_file = if kind.is_symlink() {
                fs::metadata(&path)
                    .map_err(|err| WalkError::new(path.clone(), err))?
                    .is_file()
            } else {
                kind.is_file()
            };
            if is_file {
                let relative = path.strip_prefix(root).unwrap_or(&path);
                found.push((BlobTime::of(relative), path));
            }
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, path)| path).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_time_from_azure_path() {
        let path = Path::new(
            "resourceId=/SUBSCRIPTIONS/X/y=2024/m=05/d=01/h=10/m=00/macAddress=00224871C205/PT1H.json",
        );
        assert_eq!(
            BlobTime::of(path),
            BlobTime([Some(2024), Some(5), Some(1), Some(10), Some(0)])
        );
        assert_eq!(BlobTime::of(Path::new("a/b.json")), BlobTime([None; 5]));
    }
}
