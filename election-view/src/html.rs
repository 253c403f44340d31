//! Escaping for the self-contained pages.

use std::fmt::Write;

/// `text` safe inside HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `value` as JSON for a `<script type="application/json">` block: `<`, `>` and `&` (which only
/// occur inside strings) are written as `\u` escapes, so no text of the run can close the
/// script element.
pub(crate) fn script_json(value: &impl serde::Serialize) -> String {
    let json = serde_json::to_string(value).expect("page data serializes");
    let mut out = String::with_capacity(json.len() + 64);
    for c in json.chars() {
        match c {
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// The start of a page: doctype, title, inline style, and a first script that shows any script
/// error on the page (it runs before the page's own script, so it also catches a syntax error
/// there) and keeps it in `window.pageErrors` for tests.
pub(crate) fn page_start(title: &str, css: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>\n{css}</style>\n<script>\n{ERRORS}</script>\n</head>\n",
        escape(title)
    )
}

const ERRORS: &str = r#"window.pageErrors = [];
window.addEventListener('error', function (e) {
  var text = (e.message || 'script error') + (e.lineno ? ' (line ' + e.lineno + ')' : '');
  window.pageErrors.push(text);
  var box = document.getElementById('page-error');
  if (box) { box.hidden = false; box.textContent = 'This page failed to draw: ' + text; }
});
"#;

#[cfg(test)]
mod tests {
    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            super::escape(r#"<b a="1">&'"#),
            "&lt;b a=&quot;1&quot;&gt;&amp;&#39;"
        );
    }
}
