//! Mail templates the admin can edit: a plain-text and an HTML file per kind of mail, each with
//! `{{name}}` placeholders.
//!
//! Why not askama (which the panel uses): askama compiles templates into the binary, and these
//! must be editable by the admin without a rebuild. The substitution here is deliberately tiny
//! and safe: a fixed set of names per kind (an unknown name or an unclosed `{{` is refused when
//! the template is loaded, naming the file), no expressions, no loops, no includes, and every
//! value is HTML-escaped in the HTML part, so a display name cannot inject markup.

use std::path::{Path, PathBuf};

use behalf_domain::Secret;

use crate::MailError;

/// Which mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    /// A Temporary Access Pass and the steps to add a passkey with it.
    Activation,
    /// A one-time link to set a new password.
    PasswordReset,
    /// A one-time code that pairs the user's Behalf Key extension, and how to use it.
    KeyPairing,
}

impl MailKind {
    fn stem(self) -> &'static str {
        match self {
            MailKind::Activation => "activation",
            MailKind::PasswordReset => "reset",
            MailKind::KeyPairing => "pairing",
        }
    }

    /// The placeholders this kind of mail fills in.
    pub fn placeholders(self) -> &'static [&'static str] {
        match self {
            MailKind::Activation => &[
                "display_name",
                "upn",
                "pass",
                "expires",
                "lifetime_minutes",
                "once_note",
                "sign_in_url",
            ],
            MailKind::PasswordReset => &["display_name", "upn", "link", "expires", "link_minutes"],
            MailKind::KeyPairing => &["display_name", "upn", "code", "server_url", "expires"],
        }
    }

    fn builtin(self) -> (&'static str, &'static str) {
        match self {
            MailKind::Activation => (
                include_str!("../templates/activation.txt"),
                include_str!("../templates/activation.html"),
            ),
            MailKind::PasswordReset => (
                include_str!("../templates/reset.txt"),
                include_str!("../templates/reset.html"),
            ),
            MailKind::KeyPairing => (
                include_str!("../templates/pairing.txt"),
                include_str!("../templates/pairing.html"),
            ),
        }
    }
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Value(&'static str),
}

/// A parsed template file.
#[derive(Debug, Clone)]
struct Parsed(Vec<Piece>);

impl Parsed {
    fn parse(src: &str, kind: MailKind, file: &str) -> Result<Parsed, MailError> {
        let mut pieces = Vec::new();
        let mut rest = src;
        while let Some(start) = rest.find("{{") {
            pieces.push(Piece::Text(rest[..start].to_owned()));
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or_else(|| MailError::Template {
                file: file.to_owned(),
                reason: "a '{{' is never closed with '}}'".into(),
            })?;
            let name = after[..end].trim();
            let known = kind
                .placeholders()
                .iter()
                .find(|p| **p == name)
                .ok_or_else(|| MailError::Template {
                    file: file.to_owned(),
                    reason: format!(
                        "unknown placeholder '{{{{{name}}}}}' (known: {})",
                        kind.placeholders().join(", ")
                    ),
                })?;
            pieces.push(Piece::Value(known));
            rest = &after[end + 2..];
        }
        pieces.push(Piece::Text(rest.to_owned()));
        Ok(Parsed(pieces))
    }

    fn render(&self, values: &Values<'_>, html: bool) -> String {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Value(name) => {
                    let v = values.get(name);
                    if html {
                        escape_html(v, &mut out);
                    } else {
                        out.push_str(v);
                    }
                }
            }
        }
        out
    }
}

fn escape_html(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// The values of one mail. The pass or link is a [`Secret`], exposed only while rendering.
#[derive(Debug)]
pub struct Values<'a> {
    pairs: Vec<(&'static str, ValueRef<'a>)>,
}

#[derive(Debug)]
enum ValueRef<'a> {
    Plain(String),
    Secret(&'a Secret),
}

impl<'a> Values<'a> {
    pub fn new() -> Self {
        Values { pairs: Vec::new() }
    }

    pub fn set(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.pairs.push((name, ValueRef::Plain(value.into())));
        self
    }

    pub fn secret(mut self, name: &'static str, value: &'a Secret) -> Self {
        self.pairs.push((name, ValueRef::Secret(value)));
        self
    }

    fn get(&self, name: &str) -> &str {
        self.pairs
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| match v {
                ValueRef::Plain(s) => s.as_str(),
                ValueRef::Secret(s) => s.expose(),
            })
    }
}

impl Default for Values<'_> {
    fn default() -> Self {
        Values::new()
    }
}

/// One kind's pair of templates; the text file's first line is `Subject: …`.
#[derive(Debug, Clone)]
struct Pair {
    subject: Parsed,
    text: Parsed,
    html: Parsed,
}

/// A rendered mail. Its bodies hold the pass or the link: they are [`Secret`]s, never logged.
#[derive(Debug)]
pub struct Rendered {
    pub subject: String,
    pub text: Secret,
    pub html: Secret,
}

/// Every kind's templates, loaded (and checked) once.
#[derive(Debug, Clone)]
pub struct Templates {
    activation: Pair,
    reset: Pair,
    pairing: Pair,
}

impl Templates {
    /// The built-in templates, each replaced by the file of the same name in `dir` if there is
    /// one (`activation.txt`, `activation.html`, `reset.txt`, `reset.html`, `pairing.txt`,
    /// `pairing.html`).
    pub fn load(dir: Option<&Path>) -> Result<Templates, MailError> {
        Ok(Templates {
            activation: load_pair(MailKind::Activation, dir)?,
            reset: load_pair(MailKind::PasswordReset, dir)?,
            pairing: load_pair(MailKind::KeyPairing, dir)?,
        })
    }

    pub fn render(&self, kind: MailKind, values: &Values<'_>) -> Rendered {
        let pair = match kind {
            MailKind::Activation => &self.activation,
            MailKind::PasswordReset => &self.reset,
            MailKind::KeyPairing => &self.pairing,
        };
        // A header cannot span lines: a value with a line break would start a new header.
        let subject = pair
            .subject
            .render(values, false)
            .replace(['\r', '\n'], " ");
        Rendered {
            subject,
            text: Secret::new(pair.text.render(values, false)),
            html: Secret::new(pair.html.render(values, true)),
        }
    }
}

fn load_pair(kind: MailKind, dir: Option<&Path>) -> Result<Pair, MailError> {
    let (builtin_text, builtin_html) = kind.builtin();
    let read = |ext: &str, builtin: &'static str| -> Result<(String, String), MailError> {
        let name = format!("{}.{ext}", kind.stem());
        match dir.map(|d| d.join(&name)) {
            Some(path) if path.exists() => {
                let src = std::fs::read_to_string(&path).map_err(|e| MailError::Template {
                    file: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                Ok((path.display().to_string(), src))
            }
            _ => Ok((format!("built-in {name}"), builtin.to_owned())),
        }
    };
    let (text_file, text_src) = read("txt", builtin_text)?;
    let (html_file, html_src) = read("html", builtin_html)?;
    let (subject, body) = split_subject(&text_src).ok_or_else(|| MailError::Template {
        file: text_file.clone(),
        reason: "the first line must be 'Subject: …', then an empty line".into(),
    })?;
    Ok(Pair {
        subject: Parsed::parse(subject, kind, &text_file)?,
        text: Parsed::parse(body, kind, &text_file)?,
        html: Parsed::parse(&html_src, kind, &html_file)?,
    })
}

fn split_subject(src: &str) -> Option<(&str, &str)> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let (first, rest) = src.split_once('\n')?;
    let subject = first
        .trim_end_matches('\r')
        .strip_prefix("Subject:")?
        .trim();
    let body = rest
        .strip_prefix("\r\n")
        .or_else(|| rest.strip_prefix('\n'))
        .unwrap_or(rest);
    (!subject.is_empty()).then_some((subject, body))
}

/// Where the admin's templates would be read from, for messages.
pub fn template_path(dir: &Path, kind: MailKind, html: bool) -> PathBuf {
    dir.join(format!(
        "{}.{}",
        kind.stem(),
        if html { "html" } else { "txt" }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_templates_render_every_value_and_escape_html() {
        let t = Templates::load(None).expect("built-in templates");
        let pass = Secret::new("Ab3#kLmN");
        let v = Values::new()
            .set("display_name", "Zoë <b>O'Neil</b>")
            .set("upn", "zoe@contoso.example")
            .secret("pass", &pass)
            .set("expires", "2026-12-01 16:00 UTC")
            .set("lifetime_minutes", "60")
            .set("once_note", ", for one sign-in")
            .set("sign_in_url", "https://aka.ms/mysecurityinfo");
        let r = t.render(MailKind::Activation, &v);
        assert_eq!(r.subject, "Your sign-in pass for zoe@contoso.example");
        assert!(r.text.expose().contains("Hello Zoë <b>O'Neil</b>,"));
        assert!(r.text.expose().contains("    Ab3#kLmN\n"));
        assert!(r.text.expose().contains("valid until 2026-12-01 16:00 UTC"));
        assert!(!r.text.expose().contains("{{"));
        let html = r.html.expose();
        assert!(
            html.contains("Hello Zoë &lt;b&gt;O&#39;Neil&lt;/b&gt;,"),
            "{html}"
        );
        assert!(html.contains("Ab3#kLmN"));
        assert!(!html.contains("<b>"));
        assert_eq!(format!("{:?}", r.text), "<hidden>");
    }

    #[test]
    fn the_pairing_mail_carries_the_code_and_the_server() {
        let t = Templates::load(None).expect("built-in templates");
        let code = Secret::new("bhp_code");
        let v = Values::new()
            .set("display_name", "Zoë")
            .set("upn", "zoe@contoso.example")
            .secret("code", &code)
            .set("server_url", "https://behalf.contoso.example")
            .set("expires", "2026-12-01 16:00 UTC");
        let r = t.render(MailKind::KeyPairing, &v);
        assert_eq!(r.subject, "Pair Behalf Key for zoe@contoso.example");
        for part in [r.text.expose(), r.html.expose()] {
            assert!(part.contains("bhp_code") && part.contains("https://behalf.contoso.example"));
            assert!(!part.contains("{{"), "{part}");
        }
    }

    #[test]
    fn admin_templates_replace_builtins_and_bad_ones_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("reset.txt"),
            "Subject: Reset for {{ upn }}\n\nGo to {{link}}\n",
        )
        .expect("write");
        let t = Templates::load(Some(dir.path())).expect("templates");
        let link = Secret::new("https://behalf.example/reset/bhr_x");
        let v = Values::new().set("upn", "a@b.c").secret("link", &link);
        let r = t.render(MailKind::PasswordReset, &v);
        assert_eq!(r.subject, "Reset for a@b.c");
        assert_eq!(
            r.text.expose(),
            "Go to https://behalf.example/reset/bhr_x\n"
        );
        // The HTML part is still the built-in one.
        assert!(r.html.expose().contains("Set my password"));

        std::fs::write(dir.path().join("activation.html"), "<p>{{password}}</p>").expect("w");
        let e = Templates::load(Some(dir.path())).expect_err("unknown placeholder");
        let msg = e.to_string();
        assert!(
            msg.contains("activation.html") && msg.contains("'{{password}}'"),
            "{msg}"
        );
        std::fs::write(dir.path().join("activation.html"), "<p>{{pass</p>").expect("w");
        let msg = Templates::load(Some(dir.path()))
            .expect_err("unclosed")
            .to_string();
        assert!(msg.contains("never closed"), "{msg}");
        std::fs::remove_file(dir.path().join("activation.html")).expect("rm");
        std::fs::write(dir.path().join("activation.txt"), "Hello {{upn}}\n").expect("w");
        let msg = Templates::load(Some(dir.path()))
            .expect_err("no subject")
            .to_string();
        assert!(msg.contains("Subject:"), "{msg}");
    }
}
