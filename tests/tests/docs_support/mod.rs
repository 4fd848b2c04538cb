//! The doc tests' Markdown reader and transcript runner (see `markdown` and `transcript`).
#![allow(clippy::unwrap_used, dead_code)] // tests fail loudly by design

pub mod markdown;
pub mod transcript;

use std::path::{Path, PathBuf};

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// The documentation the tests hold to its word: README.md, docs/*.md, firmware-notes/*.md.
/// Paths are relative to the repository's root.
pub fn doc_files() -> Vec<PathBuf> {
    let mut files = vec![PathBuf::from("README.md")];
    for dir in ["docs", "firmware-notes"] {
        let mut md: Vec<PathBuf> = std::fs::read_dir(repo().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "md"))
            .map(|p| p.strip_prefix(repo()).unwrap().to_path_buf())
            .collect();
        md.sort();
        files.extend(md);
    }
    files
}

/// Every fenced block of every doc file.
pub fn all_blocks() -> Vec<markdown::Block> {
    doc_files()
        .into_iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(repo().join(&f)).unwrap();
            markdown::blocks(&f, &text)
        })
        .collect()
}

/// The body of a golden frame (without its 4-byte length).
pub fn golden_body(name: &str) -> Vec<u8> {
    let path = repo().join(format!("proto/tests/golden/{name}.frame"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes[4..].to_vec()
}

/// The whole golden frame.
pub fn golden_frame(name: &str) -> Vec<u8> {
    let path = repo().join(format!("proto/tests/golden/{name}.frame"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
