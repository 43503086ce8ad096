//! Listing a downloaded blob tree in time order.

use std::fs;
use std::path::Path;

use linkward_flowlog::walk_blob_dir;

fn touch(root: &Path, relative: &str) {
    let path = root.join(relative);
    fs::create_dir_all(path.parent().expect("has parent")).expect("create dirs");
    fs::write(path, b"{\"records\":[]}").expect("write file");
}

#[test]
fn azure_layout_is_listed_in_time_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let base = "resourceId=/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.NETWORK/NETWORKWATCHERS/NW/FLOWLOGS/FL";
    let blobs = [
        // Created out of order on purpose.
        format!("{base}/y=2024/m=05/d=01/h=10/m=00/macAddress=000D3AF87856/PT1H.json"),
        format!("{base}/y=2024/m=04/d=30/h=23/m=00/macAddress=000D3AF87856/PT1H.json"),
        format!("{base}/y=2024/m=05/d=01/h=09/m=00/macAddress=000D3AF87857/PT1H.json"),
        format!("{base}/y=2024/m=05/d=01/h=09/m=00/macAddress=000D3AF87856/PT1H.json"),
        format!("{base}/y=2024/m=12/d=01/h=00/m=00/macAddress=000D3AF87856/PT1H.json"),
        format!("{base}/y=2023/m=12/d=31/h=23/m=00/macAddress=000D3AF87856/PT1H.json"),
        "extra/nested/other.json".to_owned(),
        "loose.JSON".to_owned(),
    ];
    for blob in &blobs {
        touch(root, blob);
    }
    fs::write(root.join("notes.txt"), b"not a log").expect("write file");
    fs::create_dir_all(root.join("empty/dir")).expect("create dirs");

    let listed: Vec<String> = walk_blob_dir(root)
        .expect("walks")
        .iter()
        .map(|path| {
            path.strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let expected = [
        "extra/nested/other.json".to_owned(),
        "loose.JSON".to_owned(),
        format!("{base}/y=2023/m=12/d=31/h=23/m=00/macAddress=000D3AF87856/PT1H.json"),
        format!("{base}/y=2024/m=04/d=30/h=23/m=00/macAddress=000D3AF87856/PT1H.json"),
        format!("{base}/y=2024/m=05/d=01/h=09/m=00/macAddress=000D3AF87856/PT1H.json"),
        format!("{base}/y=2024/m=05/d=01/h=09/m=00/macAddress=000D3AF87857/PT1H.json"),
        format!("{base}/y=2024/m=05/d=01/h=10/m=00/macAddress=000D3AF87856/PT1H.json"),
        format!("{base}/y=2024/m=12/d=01/h=00/m=00/macAddress=000D3AF87856/PT1H.json"),
    ];
    assert_eq!(listed, expected);
}

#[test]
fn time_order_beats_path_order_across_resources() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    // Resource "A" sorts first by name but logs a later hour.
    touch(root, "resourceId=/A/y=2024/m=05/d=01/h=11/m=00/PT1H.json");
    touch(root, "resourceId=/B/y=2024/m=05/d=01/h=10/m=00/PT1H.json");
    touch(root, "resourceId=/B/y=2024/m=05/d=01/h=10/m=30/PT1H.json");
    let listed: Vec<String> = walk_blob_dir(root)
        .expect("walks")
        .iter()
        .map(|path| {
            path.strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        listed,
        [
            "resourceId=/B/y=2024/m=05/d=01/h=10/m=00/PT1H.json",
            "resourceId=/B/y=2024/m=05/d=01/h=10/m=30/PT1H.json",
            "resourceId=/A/y=2024/m=05/d=01/h=11/m=00/PT1H.json",
        ]
    );
}

#[test]
fn missing_directory_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("nope");
    let err = walk_blob_dir(&missing).expect_err("fails");
    assert_eq!(err.path(), missing);
    assert_eq!(err.io_error().kind(), std::io::ErrorKind::NotFound);
    assert!(err.to_string().starts_with("cannot list flow log blobs: "));
}
