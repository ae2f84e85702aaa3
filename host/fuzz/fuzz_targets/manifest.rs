//! Any linli.toml: parsing never panics; a manifest that parses prints as TOML that parses
//! to the same manifest.
#![no_main]
use libfuzzer_sys::fuzz_target;
use linli_formats::manifest::Manifest;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(manifest) = Manifest::parse(text) else { return };
    let printed = manifest.to_toml();
    let again = Manifest::parse(&printed).unwrap_or_else(|e| panic!("a parsed manifest prints as one that fails: {e}\n{printed}"));
    assert_eq!(again, manifest);
});
