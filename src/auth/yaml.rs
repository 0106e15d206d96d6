//! The policy file's YAML, as a small tree that keeps every scalar as written.
//!
//! `yaml-rust2` is a maintained YAML 1.2 parser (`serde_yaml` is archived). Its
//! own `Yaml` value resolves plain scalars (`id: 42` becomes an integer, `0x1F`
//! becomes 31), but security.md §5 wants a plain scalar taken as written, as Go's
//! yaml.v3 does when it decodes into a string. So this file consumes the parser's
//! events and builds a tree of [`Node`]s holding the original text, and it adds
//! what the event parser leaves to its caller: duplicate mapping keys are an
//! error (as in yaml.v3), and the number of documents is counted.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// One YAML node. Mapping keys are scalars (a complex key is a syntax error here).
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// The text as written; `plain` is false for quoted and block scalars.
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl Node {
    /// `null`, `~`, an empty plain scalar, or `""`: the "empty" of security.md §5.
    pub fn is_null(&self) -> bool {
        match self {
            Node::Scalar { text, plain: true } => {
                matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL")
            }
            Node::Scalar { text, plain: false } => text.is_empty(),
            _ => false,
        }
    }
}

/// Why the text is not one usable document.
#[derive(Debug, PartialEq)]
pub enum YamlError {
    /// Syntax error or duplicate key: the text after `not valid YAML: `.
    Syntax(String),
    Empty,
    MoreThanOne,
}

/// Parses exactly one document. A document that is only `null` counts as empty.
pub fn parse(text: &str) -> Result<Node, YamlError> {
    let mut b = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser
        .load(&mut b, true)
        .map_err(|e| YamlError::Syntax(e.to_string()))?;
    if let Some(e) = b.error {
        return Err(YamlError::Syntax(e));
    }
    match b.docs.len() {
        0 => Err(YamlError::Empty),
        1 => {
            let root = b.docs.pop().expect("one document");
            if root.is_null() {
                Err(YamlError::Empty)
            } else {
                Ok(root)
            }
        }
        _ => Err(YamlError::MoreThanOne),
    }
}

enum Open {
    Seq(usize, Vec<Node>),
    /// Anchor, entries, the key waiting for its value, the line of each key seen.
    Map(
        usize,
        Vec<(String, Node)>,
        Option<String>,
        HashMap<String, usize>,
    ),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    docs: Vec<Node>,
    anchors: HashMap<usize, Node>,
    error: Option<String>,
    /// Line of the key waiting in each open mapping (for the duplicate message).
    key_lines: Vec<usize>,
}

impl Builder {
    fn fail(&mut self, msg: String) {
        if self.error.is_none() {
            self.error = Some(msg);
        }
    }

    /// A finished node goes into its parent (or becomes a document).
    fn push(&mut self, node: Node, anchor: usize, line: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        let mut error = None;
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Open::Seq(_, items)) => items.push(node),
            Some(Open::Map(_, entries, pending, seen)) => match pending.take() {
                Some(key) => {
                    seen.insert(key.clone(), *self.key_lines.last().unwrap_or(&line));
                    entries.push((key, node));
                }
                None => match node {
                    Node::Scalar { text, .. } => {
                        if let Some(&first) = seen.get(&text) {
                            error = Some(format!(
                                "line {line}: mapping key {text:?} already defined at line {first}"
                            ));
                        }
                        *pending = Some(text);
                        if let Some(l) = self.key_lines.last_mut() {
                            *l = line;
                        }
                    }
                    _ => error = Some(format!("line {line}: a mapping key must be a scalar")),
                },
            },
        }
        if let Some(e) = error {
            self.fail(e);
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line();
        match ev {
            Event::Scalar(text, style, anchor, _tag) => {
                let plain = style == TScalarStyle::Plain;
                self.push(Node::Scalar { text, plain }, anchor, line);
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(n) => self.push(n, 0, line),
                None => self.fail(format!("line {line}: unknown anchor")),
            },
            Event::SequenceStart(anchor, _) => self.stack.push(Open::Seq(anchor, Vec::new())),
            Event::MappingStart(anchor, _) => {
                self.stack
                    .push(Open::Map(anchor, Vec::new(), None, HashMap::new()));
                self.key_lines.push(line);
            }
            Event::SequenceEnd => {
                if let Some(Open::Seq(anchor, items)) = self.stack.pop() {
                    self.push(Node::Seq(items), anchor, line);
                }
            }
            Event::MappingEnd => {
                if let Some(Open::Map(anchor, entries, _, _)) = self.stack.pop() {
                    self.key_lines.pop();
                    self.push(Node::Map(entries), anchor, line);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: &str) -> Node {
        Node::Scalar {
            text: t.into(),
            plain: true,
        }
    }

    #[test]
    fn scalars_keep_their_text() {
        let n = parse("id: 42\nhex: 0x1F\nq: \"007\"\n").unwrap();
        let Node::Map(m) = n else { panic!() };
        assert_eq!(m[0], ("id".into(), s("42")));
        assert_eq!(m[1], ("hex".into(), s("0x1F")));
        assert_eq!(
            m[2].1,
            Node::Scalar {
                text: "007".into(),
                plain: false
            }
        );
    }

    #[test]
    fn json_is_yaml() {
        let n = parse(r#"{"tokens":[{"id":"a","scopes":["read"]}]}"#).unwrap();
        let Node::Map(m) = n else { panic!() };
        assert_eq!(m[0].0, "tokens");
        assert!(matches!(&m[0].1, Node::Seq(v) if v.len() == 1));
    }

    #[test]
    fn duplicate_key_is_a_syntax_error() {
        let e = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        let YamlError::Syntax(msg) = e else { panic!() };
        assert!(msg.contains("mapping key \"a\" already defined"), "{msg}");
        // Same key in two different mappings is fine.
        assert!(parse("x: {a: 1}\ny: {a: 2}\n").is_ok());
    }

    #[test]
    fn documents_are_counted() {
        assert_eq!(parse(""), Err(YamlError::Empty));
        assert_eq!(parse("# only a comment\n\n"), Err(YamlError::Empty));
        assert_eq!(parse("---\n"), Err(YamlError::Empty));
        assert_eq!(parse("a: 1\n---\nb: 2\n"), Err(YamlError::MoreThanOne));
        assert!(matches!(parse("a: [1,\n"), Err(YamlError::Syntax(_))));
    }

    #[test]
    fn aliases_resolve_and_nulls_are_null() {
        let n = parse("a: &x [read]\nb: *x\nc: ~\nd: \"\"\n").unwrap();
        let Node::Map(m) = n else { panic!() };
        assert_eq!(m[0].1, m[1].1);
        assert!(m[2].1.is_null() && m[3].1.is_null());
        assert!(!s("nil").is_null());
    }
}
