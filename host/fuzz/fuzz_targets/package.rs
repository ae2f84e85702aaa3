//! Any upload: reading a package never panics; a package that reads writes back to bytes
//! that read as the same package.
#![no_main]
use libfuzzer_sys::fuzz_target;
use linli_formats::archive::Package;

fuzz_target!(|data: &[u8]| {
    let Ok(package) = Package::read(data) else { return };
    let _ = package.verify_contents();
    if let Some(signature) = &package.signature {
        let key = linli_formats::signing::generate().verifying_key();
        assert!(signature.verify(&key, package.manifest_text.as_bytes()).is_err(), "a signature verified under a fresh random key");
    }
    let written = package.write().expect("a package that was read can be written");
    let again = Package::read(&written).expect("a written package reads back");
    assert_eq!(again.manifest, package.manifest);
    assert_eq!(again.files, package.files);
});
