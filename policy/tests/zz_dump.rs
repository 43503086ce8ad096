use linkward_policy::validate::check_file;
#[test]
fn dump() {
    for p in std::env::var("LW_FILES").unwrap().split(',') {
        let (text, checked) = check_file(std::path::Path::new(p)).unwrap();
        for d in &checked.diagnostics { println!("{}\n", d.render(&text)); }
        println!("policy: {:#?}", checked.policy.is_some());
    }
}
