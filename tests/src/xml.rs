//! A well-formedness check for the XML documents the bench writes (its SVG
//! plots): one root element, every element closed in order, attributes
//! quoted, `&` only as an entity or character reference, and the text of
//! every element, so that a test can look for the labels a plot shows.
//! Not a validating parser: enough to tell a whole, nested document from
//! a cut or garbled one.

/// What a well-formed document holds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Document {
    /// The root element's name.
    pub root: String,
    /// Every element's name, in document order.
    pub elements: Vec<String>,
    /// The text between tags, trimmed and with the five predefined
    /// entities decoded, where not empty.
    pub texts: Vec<String>,
}

/// Checks `text` and returns what it holds, or says where it goes wrong.
pub fn parse(text: &str) -> Result<Document, String> {
    let mut doc = Document::default();
    let mut open: Vec<String> = Vec::new();
    let mut rest = text;
    let mut closed_root = false;
    while !rest.is_empty() {
        let lt = rest.find('<').unwrap_or(rest.len());
        let between = &rest[..lt];
        if !between.trim().is_empty() {
            if open.is_empty() {
                return Err(format!("text outside the root element: {between:.40}"));
            }
            doc.texts.push(decode(between.trim())?);
        }
        rest = &rest[lt..];
        if rest.is_empty() {
            break;
        }
        let (end, skip) = if rest.starts_with("<?") {
            (rest.find("?>").ok_or("an unclosed <?")?, 2)
        } else if rest.starts_with("<!--") {
            (rest.find("-->").ok_or("an unclosed comment")?, 3)
        } else if rest.starts_with("<!") {
            (rest.find('>').ok_or("an unclosed <!")?, 1)
        } else {
            let end = tag_end(rest)?;
            let tag = &rest[1..end];
            if let Some(name) = tag.strip_prefix('/') {
                let name = name.trim();
                match open.pop() {
                    Some(o) if o == name => closed_root = open.is_empty(),
                    Some(o) => return Err(format!("</{name}> closes <{o}>")),
                    None => return Err(format!("</{name}> closes nothing")),
                }
            } else {
                if closed_root {
                    return Err("a second root element".into());
                }
                let empty = tag.ends_with('/');
                let body = tag.trim_end_matches('/');
                let name_end = body.find(|c: char| c.is_whitespace()).unwrap_or(body.len());
                let name = &body[..name_end];
                if name.is_empty() {
                    return Err(format!("a tag without a name: <{tag:.40}>"));
                }
                attributes(&body[name_end..]).map_err(|e| format!("<{name}>: {e}"))?;
                if doc.root.is_empty() {
                    doc.root = name.to_owned();
                }
                doc.elements.push(name.to_owned());
                if empty {
                    closed_root = open.is_empty();
                } else {
                    open.push(name.to_owned());
                }
            }
            (end, 1)
        };
        rest = &rest[end + skip..];
    }
    if let Some(o) = open.last() {
        return Err(format!("<{o}> is never closed"));
    }
    if doc.root.is_empty() {
        return Err("no element".into());
    }
    Ok(doc)
}

/// Where the tag at the start of `s` ends (its `>`), quotes respected.
fn tag_end(s: &str) -> Result<usize, String> {
    let mut quote = None;
    for (i, c) in s.char_indices().skip(1) {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return Ok(i),
            (None, '<') => return Err(format!("a `<` inside a tag: {s:.40}")),
            _ => {}
        }
    }
    Err(format!("an unclosed tag: {s:.40}"))
}

/// Checks `name="value"` pairs.
fn attributes(mut s: &str) -> Result<(), String> {
    loop {
        s = s.trim_start();
        if s.is_empty() {
            return Ok(());
        }
        let eq = s
            .find('=')
            .ok_or(format!("an attribute without a value: {s:.40}"))?;
        let name = s[..eq].trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(format!("a bad attribute name: {s:.40}"));
        }
        let value = s[eq + 1..].trim_start();
        let q = value
            .chars()
            .next()
            .filter(|c| *c == '"' || *c == '\'')
            .ok_or(format!("attribute {name} is not quoted"))?;
        let close = value[1..]
            .find(q)
            .ok_or(format!("attribute {name} is not closed"))?;
        decode(&value[1..1 + close]).map_err(|e| format!("attribute {name}: {e}"))?;
        s = &value[close + 2..];
    }
}

/// `text` with its references decoded; a bare `&` is an error.
fn decode(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let semi = rest[amp..]
            .find(';')
            .ok_or(format!("a bare `&`: {text:.40}"))?;
        let name = &rest[amp + 1..amp + semi];
        let decoded = match name {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = name.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = name.strip_prefix('#') {
                    dec.parse().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32)
                    .ok_or(format!("an unknown reference &{name};"))?
            }
        };
        out.push(decoded);
        rest = &rest[amp + semi + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_document_is_read() {
        let doc = parse(
            "<?xml version=\"1.0\"?>\n<svg width=\"10\" a='b &amp; c'><!-- x -->\
             <g><text x=\"1\">canary&apos;s &#181;s</text><circle r=\"3\"/></g></svg>\n",
        )
        .unwrap();
        assert_eq!(doc.root, "svg");
        assert_eq!(doc.elements, ["svg", "g", "text", "circle"]);
        assert_eq!(doc.texts, ["canary's µs"]);
    }

    #[test]
    fn broken_documents_are_refused() {
        for (text, needle) in [
            ("<svg><g></svg>", "</svg> closes <g>"),
            ("<svg><g>", "never closed"),
            ("<svg></svg><svg/>", "second root"),
            ("<svg a=1></svg>", "not quoted"),
            ("<svg>a & b</svg>", "bare"),
            ("<svg>&nbsp;</svg>", "unknown reference"),
            ("<svg", "unclosed tag"),
            ("text", "outside the root"),
            ("", "no element"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }
}
