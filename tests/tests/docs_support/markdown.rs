//! Just enough Markdown for the doc tests: fenced code blocks with the marker comment above
//! them, and inline code spans. A marker is an HTML comment on the line right before the
//! fence (blank lines between are allowed), invisible on a rendered page:
//!
//! - `<!-- doctest: skip: WHY -->`: the block cannot run here (hardware, network, systemd,
//!   a remote host); the reason is printed with every run.
//! - `<!-- doctest: fresh -->`: a console transcript that starts in a new, empty sandbox;
//!   `<!-- doctest: keys NAME:EXCHANGE ... -->`: one that starts in a new sandbox with the soft
//!   token enrolled and those keys stored (test credentials).
//! - `<!-- golden: NAME NAME ... -->`: each line of the block is that golden frame's body,
//!   byte for byte (`proto/tests/golden/NAME.frame`); `<!-- golden-hex: NAME -->` for a hex
//!   dump of a whole frame.

use std::path::{Path, PathBuf};

/// One fenced code block.
#[derive(Debug, Clone)]
pub struct Block {
    pub file: PathBuf,
    /// The line of the opening fence, from 1.
    pub line: usize,
    /// The info string's first word (`console`, `sh`, `json`...), empty when none.
    pub lang: String,
    /// The marker comment's text (without `<!--` and `-->`), if any.
    pub marker: Option<String>,
    pub body: String,
}

impl Block {
    /// `file:line`, for messages.
    pub fn at(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }

    /// The reason given by a `doctest: skip: WHY` marker.
    pub fn skip_reason(&self) -> Option<&str> {
        self.marker
            .as_deref()?
            .strip_prefix("doctest: skip:")
            .map(str::trim)
    }

    /// The golden frame names of a `golden:` marker.
    pub fn goldens(&self) -> Option<Vec<&str>> {
        let names = self.marker.as_deref()?.strip_prefix("golden:")?;
        Some(names.split_whitespace().collect())
    }

    /// Whether the marker asks for a new sandbox (`doctest: fresh`, or `doctest: keys ...`).
    pub fn fresh(&self) -> bool {
        self.marker.as_deref() == Some("doctest: fresh") || !self.keys().is_empty()
    }

    /// The keys a `doctest: keys NAME:EXCHANGE ...` marker asks to be stored first.
    pub fn keys(&self) -> Vec<&str> {
        self.marker
            .as_deref()
            .and_then(|m| m.strip_prefix("doctest: keys "))
            .map(|k| k.split_whitespace().collect())
            .unwrap_or_default()
    }
}

/// Every fenced block of `text` (from `file`). A fence is three or more backticks at the
/// start of a line (indented up to 3 spaces); the block ends at a fence at least as long.
pub fn blocks(file: &Path, text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some((ticks, info)) = fence(lines[i]) else {
            i += 1;
            continue;
        };
        let start = i;
        let mut body = Vec::new();
        i += 1;
        while i < lines.len()
            && !fence(lines[i]).is_some_and(|(t, rest)| t >= ticks && rest.is_empty())
        {
            body.push(lines[i]);
            i += 1;
        }
        out.push(Block {
            file: file.to_path_buf(),
            line: start + 1,
            lang: info.split_whitespace().next().unwrap_or("").to_owned(),
            marker: marker_before(&lines[..start]),
            body: body.iter().map(|l| format!("{l}\n")).collect(),
        });
        i += 1;
    }
    out
}

/// `(backtick count, info string)` when `line` opens or closes a fence.
fn fence(line: &str) -> Option<(usize, &str)> {
    let trimmed = line.trim_start_matches(' ');
    if line.len() - trimmed.len() > 3 {
        return None;
    }
    let ticks = trimmed.len() - trimmed.trim_start_matches('`').len();
    (ticks >= 3).then(|| (ticks, trimmed[ticks..].trim()))
}

/// The HTML comment on the last non-blank line before a fence.
fn marker_before(before: &[&str]) -> Option<String> {
    let last = before.iter().rev().find(|l| !l.trim().is_empty())?.trim();
    let inner = last.strip_prefix("<!--")?.strip_suffix("-->")?;
    Some(inner.trim().to_owned())
}

/// Every inline code span outside fenced blocks, with its line (from 1).
pub fn code_spans(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_fence: Option<usize> = None;
    for (n, line) in text.lines().enumerate() {
        if let Some((ticks, rest)) = fence(line) {
            match in_fence {
                None => in_fence = Some(ticks),
                Some(open) if ticks >= open && rest.is_empty() => in_fence = None,
                Some(_) => {}
            }
            continue;
        }
        if in_fence.is_some() {
            continue;
        }
        let mut rest = line;
        while let Some(start) = rest.find('`') {
            let after = &rest[start..];
            let ticks = after.len() - after.trim_start_matches('`').len();
            let open = &after[ticks..];
            let close = "`".repeat(ticks);
            let Some(end) = open.find(&close) else { break };
            out.push((n + 1, open[..end].trim().to_owned()));
            rest = &open[end + ticks..];
        }
    }
    out
}

/// The words of the first command of a shell line: quotes and backslashes resolved, stopped
/// at an unquoted comment, pipe, list operator or redirection. `None` when quoting is left
/// open. Enough for the command lines the docs show, not a shell.
pub fn shell_words(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        ch => word.push(ch),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => word.push(chars.next()?),
                        ch => word.push(ch),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(chars.next()?);
            }
            '#' if !in_word => break,
            '|' | ';' | '&' | '<' | '>' => {
                // `2>`: the descriptor number belongs to the redirection, not the command.
                if (c == '>' || c == '<') && in_word && word.chars().all(|d| d.is_ascii_digit()) {
                    word.clear();
                    in_word = false;
                }
                break;
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_carry_their_language_line_and_marker() {
        let md = "text\n<!-- doctest: skip: needs a YubiKey -->\n\n```sh\ntapsign token add --piv\n```\n\n````console\n$ a\n```\nb\n````\n```\nplain\n```\n";
        let b = blocks(Path::new("x.md"), md);
        assert_eq!(b.len(), 3);
        assert_eq!((b[0].line, b[0].lang.as_str()), (4, "sh"));
        assert_eq!(b[0].skip_reason(), Some("needs a YubiKey"));
        assert_eq!(b[0].body, "tapsign token add --piv\n");
        assert_eq!(
            b[1].body, "$ a\n```\nb\n",
            "a longer fence holds a shorter one"
        );
        assert_eq!(b[1].marker, None);
        assert_eq!(b[2].lang, "");
    }

    #[test]
    fn golden_markers_list_frame_names() {
        let md = "<!-- golden: request_hello response_hello -->\n```json\n{}\n```\n";
        let b = &blocks(Path::new("x.md"), md)[0];
        assert_eq!(b.goldens().unwrap(), ["request_hello", "response_hello"]);
        assert_eq!(b.skip_reason(), None);
    }

    #[test]
    fn code_spans_skip_fenced_blocks() {
        let md = "Run `tapsign lock` or ``a ` b``.\n```sh\n`not a span`\n```\n`x`\n";
        assert_eq!(
            code_spans(md),
            [
                (1, "tapsign lock".to_owned()),
                (1, "a ` b".to_owned()),
                (5, "x".to_owned())
            ]
        );
    }

    #[test]
    fn shell_words_stop_where_the_first_command_ends() {
        let w = |s: &str| shell_words(s).unwrap();
        assert_eq!(
            w(r#"tapsign sign k --query 'a=1&b=2' --body "{\"x\":1}"  # comment"#),
            [
                "tapsign",
                "sign",
                "k",
                "--query",
                "a=1&b=2",
                "--body",
                r#"{"x":1}"#
            ]
        );
        assert_eq!(w("tapsign agent 2> log &"), ["tapsign", "agent"]);
        assert_eq!(
            w("tapsign status --json | jq ."),
            ["tapsign", "status", "--json"]
        );
        assert_eq!(w("tapsign lock; swaylock"), ["tapsign", "lock"]);
        assert_eq!(shell_words("echo 'open"), None);
    }
}
