//! A small writer of HCL (Terraform's language) that prints what `terraform fmt` would: two
//! spaces per level, `=` aligned across runs of one-line attributes, a multi-line value (an
//! object, a list of objects) starting its own run, as hclwrite's formatter does.

use serde_json::Value;

/// A value on the right of `=`.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Printed as is: a reference (`aws_s3_bucket.images.id`), a number, `true`.
    Raw(String),
    /// A quoted template string; `${...}` in it interpolates.
    Str(String),
    List(Vec<Expr>),
    Object(Vec<(String, Expr)>),
    /// `name(args)`, e.g. `jsonencode({...})`; only the last argument may span lines.
    Call(&'static str, Vec<Expr>),
    /// A `<<EOT` heredoc; the text must end with a newline.
    Heredoc(String),
}

/// One item of a block's body.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Attr(String, Expr),
    Block(Block),
    Blank,
    Comment(String),
}

/// `kind "label" "label" { body }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub kind: String,
    pub labels: Vec<String>,
    pub body: Vec<Item>,
}

impl Block {
    pub fn new(kind: &str, labels: &[&str], body: Vec<Item>) -> Self {
        Self {
            kind: kind.to_owned(),
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
            body,
        }
    }
}

pub fn attr(key: &str, value: Expr) -> Item {
    Item::Attr(key.to_owned(), value)
}

pub fn raw(text: impl Into<String>) -> Expr {
    Expr::Raw(text.into())
}

pub fn string(text: impl Into<String>) -> Expr {
    Expr::Str(text.into())
}

pub fn block(kind: &str, labels: &[&str], body: Vec<Item>) -> Item {
    Item::Block(Block::new(kind, labels, body))
}

/// A JSON value as an HCL expression, for `jsonencode(...)`.
pub fn from_json(value: &Value) -> Expr {
    match value {
        Value::Null => raw("null"),
        Value::Bool(b) => raw(b.to_string()),
        Value::Number(n) => raw(n.to_string()),
        Value::String(s) => string(s.clone()),
        Value::Array(items) => Expr::List(items.iter().map(from_json).collect()),
        Value::Object(map) => {
            Expr::Object(map.iter().map(|(k, v)| (k.clone(), from_json(v))).collect())
        }
    }
}

/// Top-level blocks separated by blank lines, as a file.
pub fn file(blocks: &[Block]) -> String {
    let mut out = String::new();
    for (i, block) in blocks.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        write_block(&mut out, block, 0);
    }
    out
}

fn indent(level: usize) -> String {
    "  ".repeat(level)
}

fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn key(text: &str) -> String {
    let mut chars = text.chars();
    let identifier = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if identifier {
        text.to_owned()
    } else {
        quote(text)
    }
}

/// The expression on one line, if it fits on one.
fn inline(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Raw(text) => Some(text.clone()),
        Expr::Str(text) => Some(quote(text)),
        Expr::List(items) => {
            let parts: Option<Vec<String>> = items.iter().map(inline).collect();
            parts.map(|parts| format!("[{}]", parts.join(", ")))
        }
        Expr::Object(items) if items.is_empty() => Some("{}".to_owned()),
        Expr::Object(_) | Expr::Heredoc(_) => None,
        Expr::Call(name, args) => {
            let parts: Option<Vec<String>> = args.iter().map(inline).collect();
            parts.map(|parts| format!("{name}({})", parts.join(", ")))
        }
    }
}

/// Writes `expr` starting mid-line at nesting `level`; multi-line forms end on their closing
/// bracket, without a newline.
fn write_expr(out: &mut String, expr: &Expr, level: usize) {
    if let Some(text) = inline(expr) {
        out.push_str(&text);
        return;
    }
    match expr {
        Expr::Heredoc(text) => {
            out.push_str("<<EOT\n");
            out.push_str(text);
            out.push_str("EOT");
        }
        Expr::Object(items) => {
            out.push_str("{\n");
            let body: Vec<Item> = items
                .iter()
                .map(|(k, v)| Item::Attr(k.clone(), v.clone()))
                .collect();
            write_body(out, &body, level + 1);
            out.push_str(&indent(level));
            out.push('}');
        }
        Expr::List(items) => {
            out.push_str("[\n");
            for item in items {
                out.push_str(&indent(level + 1));
                write_expr(out, item, level + 1);
                out.push_str(",\n");
            }
            out.push_str(&indent(level));
            out.push(']');
        }
        Expr::Call(name, args) => {
            out.push_str(name);
            out.push('(');
            for (i, arg) in args.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_expr(out, arg, level);
            }
            out.push(')');
        }
        Expr::Raw(_) | Expr::Str(_) => {}
    }
}

/// True if the attribute's line counts in an alignment run: its value is on one line, or is
/// a heredoc (whose opening line is balanced).
fn aligns(expr: &Expr) -> bool {
    inline(expr).is_some() || matches!(expr, Expr::Heredoc(_))
}

/// Top-level attributes, as in a `.tfvars` file.
pub fn write_items(out: &mut String, items: &[Item]) {
    write_body(out, items, 0);
}

fn write_body(out: &mut String, items: &[Item], level: usize) {
    let pad = indent(level);
    let mut i = 0;
    while i < items.len() {
        match &items[i] {
            Item::Attr(_, value) if aligns(value) => {
                let run_end = items[i..]
                    .iter()
                    .position(|item| !matches!(item, Item::Attr(_, v) if aligns(v)))
                    .map_or(items.len(), |n| i + n);
                let width = items[i..run_end]
                    .iter()
                    .filter_map(|item| match item {
                        Item::Attr(name, _) => Some(key(name).chars().count()),
                        _ => None,
                    })
                    .max()
                    .unwrap_or(0);
                for item in &items[i..run_end] {
                    if let Item::Attr(name, value) = item {
                        let name = key(name);
                        out.push_str(&format!("{pad}{name:<width$} = "));
                        write_expr(out, value, level);
                        out.push('\n');
                    }
                }
                i = run_end;
            }
            Item::Attr(name, value) => {
                out.push_str(&format!("{pad}{} = ", key(name)));
                write_expr(out, value, level);
                out.push('\n');
                i += 1;
            }
            Item::Block(block) => {
                write_block(out, block, level);
                i += 1;
            }
            Item::Blank => {
                out.push('\n');
                i += 1;
            }
            Item::Comment(text) => {
                for line in text.lines() {
                    out.push_str(&format!("{pad}# {line}\n"));
                }
                i += 1;
            }
        }
    }
}

fn write_block(out: &mut String, block: &Block, level: usize) {
    out.push_str(&indent(level));
    out.push_str(&block.kind);
    for label in &block.labels {
        out.push(' ');
        out.push_str(&quote(label));
    }
    if block.body.is_empty() {
        out.push_str(" {}\n");
        return;
    }
    out.push_str(" {\n");
    write_body(out, &block.body, level + 1);
    out.push_str(&indent(level));
    out.push_str("}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_attributes_align_and_multi_line_values_stand_alone() {
        let text = file(&[Block::new(
            "resource",
            &["aws_iam_role_policy", "x"],
            vec![
                attr("name", string("p")),
                attr("role", raw("aws_iam_role.x.id")),
                attr(
                    "policy",
                    Expr::Call(
                        "jsonencode",
                        vec![from_json(&serde_json::json!({
                            "Version": "2012-10-17",
                            "Statement": [{"Sid": "A", "Action": ["s3:GetObject"]}]
                        }))],
                    ),
                ),
                attr(
                    "tags",
                    Expr::Object(vec![("hybridlab:stack".into(), raw("local.id"))]),
                ),
            ],
        )]);
        assert_eq!(
            text,
            "resource \"aws_iam_role_policy\" \"x\" {\n  \
             name = \"p\"\n  \
             role = aws_iam_role.x.id\n  \
             policy = jsonencode({\n    \
             Statement = [\n      \
             {\n        \
             Action = [\"s3:GetObject\"]\n        \
             Sid    = \"A\"\n      \
             },\n    \
             ]\n    \
             Version = \"2012-10-17\"\n  \
             })\n  \
             tags = {\n    \
             \"hybridlab:stack\" = local.id\n  \
             }\n\
             }\n"
        );
    }

    #[test]
    fn strings_are_escaped_but_interpolations_kept() {
        assert_eq!(
            quote("a \"b\" ${local.id}\n"),
            "\"a \\\"b\\\" ${local.id}\\n\""
        );
        assert_eq!(key("hybridlab:stack"), "\"hybridlab:stack\"");
        assert_eq!(key("Name"), "Name");
    }
}
