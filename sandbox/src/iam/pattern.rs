//! Wildcard matching as IAM does it, for actions, resources and the `...Like` condition
//! operators: `*` is any run of characters, `?` any one character.
//!
//! A request's own resource may have parts the sandbox cannot know (the random suffix of a
//! secret named without it, the path of a role named without it). Those are [`Unit::AnyChar`]
//! and [`Unit::AnyRun`], and a pattern matches when it matches *some* value of them, so the
//! matcher decides whether two wildcard languages intersect. For a request without unknown
//! parts that is plain glob matching.

/// One element of a compiled pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Glob {
    Lit(char),
    /// `?`; `colon`: whether it may stand for a `:`.
    One {
        colon: bool,
    },
    /// `*`; `colon`: whether it may run across a `:`.
    Star {
        colon: bool,
    },
}

/// One element of a request's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    Lit(char),
    /// One character the sandbox does not know.
    AnyChar,
    /// Any run of characters the sandbox does not know.
    AnyRun,
}

/// How a pattern's wildcards behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// `*` and `?` stand for anything, `:` included (actions, `StringLike`).
    Anything,
    /// Resource ARNs. IAM: "You can use wildcard characters (* and ?) within any ARN segment
    /// (the parts separated by colons) [...] If the * wildcard is the last character of a
    /// resource ARN segment, it can expand to match beyond the colon boundaries"
    /// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html).
    /// So a `*` that ends its segment runs across `:` (and `/`), one inside a segment does not
    /// leave it, and `?` is never a `:`.
    Arn,
}

/// How `${...}` in a pattern is read.
pub(crate) enum Variables<'a> {
    /// Policy version 2008-10-17 or none: `${` is plain text.
    Literal,
    /// Version 2012-10-17: `${*}`, `${?}` and `${$}` are the literal characters, `${key}` and
    /// `${key, 'default'}` are replaced by the request's single value of `key`.
    Substitute(&'a dyn Fn(&str) -> Option<String>),
}

/// Compiles `pattern`; `None` when it names a variable the request has no single value for
/// (IAM: such a pattern matches nothing).
pub(crate) fn compile(
    pattern: &str,
    flavor: Flavor,
    variables: &Variables<'_>,
) -> Option<Vec<Glob>> {
    let mut globs = Vec::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(c) = rest.chars().next() {
        if let Variables::Substitute(lookup) = variables
            && rest.starts_with("${")
            && let Some(end) = rest.find('}')
        {
            let inner = &rest[2..end];
            rest = &rest[end + 1..];
            match inner {
                "*" | "?" | "$" => globs.extend(inner.chars().map(Glob::Lit)),
                _ => {
                    let (key, default) = match inner.split_once(',') {
                        Some((key, default)) => {
                            let default = default.trim();
                            let default = default
                                .strip_prefix('\'')
                                .and_then(|d| d.strip_suffix('\''))
                                .unwrap_or(default);
                            (key.trim(), Some(default))
                        }
                        None => (inner.trim(), None),
                    };
                    let value = lookup(key).or_else(|| default.map(str::to_owned))?;
                    globs.extend(value.chars().map(Glob::Lit));
                }
            }
            continue;
        }
        rest = &rest[c.len_utf8()..];
        globs.push(match c {
            '*' => Glob::Star { colon: true },
            '?' => Glob::One { colon: true },
            c => Glob::Lit(c),
        });
    }
    if flavor == Flavor::Arn {
        let ends_segment: Vec<bool> = (0..globs.len())
            .map(|i| matches!(globs.get(i + 1), None | Some(Glob::Lit(':'))))
            .collect();
        for (glob, ends_segment) in globs.iter_mut().zip(ends_segment) {
            match glob {
                Glob::Star { colon } => *colon = ends_segment,
                Glob::One { colon } => *colon = false,
                Glob::Lit(_) => {}
            }
        }
    }
    Some(globs)
}

/// The units of a fully known value.
pub(crate) fn known(text: &str) -> Vec<Unit> {
    text.chars().map(Unit::Lit).collect()
}

/// Whether `pattern` matches some value `text` may stand for. `ignore_case` compares letters
/// without case (actions).
pub(crate) fn matches(pattern: &[Glob], text: &[Unit], ignore_case: bool) -> bool {
    let (np, nt) = (pattern.len(), text.len());
    let width = nt + 1;
    let mut reach = vec![false; (np + 1) * width];
    reach[0] = true;
    let same = |a: char, b: char| a == b || (ignore_case && a.to_lowercase().eq(b.to_lowercase()));
    // Every step moves forward in the pattern, the text or both, so one pass in order visits
    // each state after every state that reaches it.
    for i in 0..=np {
        for j in 0..=nt {
            if !reach[i * width + j] {
                continue;
            }
            if i == np && j == nt {
                return true;
            }
            let p = pattern.get(i);
            let t = text.get(j);
            // A `*` or an unknown run may end here.
            if let Some(Glob::Star { .. }) = p {
                reach[(i + 1) * width + j] = true;
            }
            if let Some(Unit::AnyRun) = t {
                reach[i * width + j + 1] = true;
            }
            // Or both sides take one character.
            let (Some(p), Some(t)) = (p, t) else { continue };
            let compatible = match (p, t) {
                (Glob::Lit(a), Unit::Lit(b)) => same(*a, *b),
                (Glob::One { colon } | Glob::Star { colon }, Unit::Lit(b)) => *colon || *b != ':',
                _ => true,
            };
            if !compatible {
                continue;
            }
            let next_i = if matches!(p, Glob::Star { .. }) {
                i
            } else {
                i + 1
            };
            let next_j = if matches!(t, Unit::AnyRun) { j } else { j + 1 };
            if (next_i, next_j) != (i, j) {
                reach[next_i * width + next_j] = true;
            }
        }
    }
    false
}

/// Plain glob matching of a known value, for the condition operators.
pub(crate) fn like(pattern: &str, value: &str, flavor: Flavor, variables: &Variables<'_>) -> bool {
    compile(pattern, flavor, variables).is_some_and(|globs| matches(&globs, &known(value), false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(pattern: &str, flavor: Flavor) -> Vec<Glob> {
        compile(pattern, flavor, &Variables::Literal).expect("no variables")
    }

    fn arn_matches(pattern: &str, value: &str) -> bool {
        matches(&glob(pattern, Flavor::Arn), &known(value), false)
    }

    #[test]
    fn stars_and_question_marks_match_as_globs() {
        assert!(arn_matches(
            "arn:aws:s3:::b/*",
            "arn:aws:s3:::b/images/0001/a.jpg"
        ));
        assert!(arn_matches("arn:aws:s3:::b/*", "arn:aws:s3:::b/"));
        assert!(!arn_matches("arn:aws:s3:::b/*", "arn:aws:s3:::b"));
        assert!(!arn_matches("arn:aws:s3:::b/*", "arn:aws:s3:::bb/x"));
        assert!(arn_matches(
            "arn:aws:s3:::b/??.jpg",
            "arn:aws:s3:::b/ab.jpg"
        ));
        assert!(!arn_matches(
            "arn:aws:s3:::b/??.jpg",
            "arn:aws:s3:::b/abc.jpg"
        ));
        assert!(arn_matches("*", "arn:aws:s3:::anything"));
        assert!(arn_matches(
            "arn:aws:s3:::b/*/small.jpg",
            "arn:aws:s3:::b/images/1/small.jpg"
        ));
        assert!(
            !arn_matches("arn:aws:s3:::B/*", "arn:aws:s3:::b/x"),
            "case counts"
        );
    }

    #[test]
    fn a_star_ending_its_segment_crosses_colons_one_inside_does_not() {
        let group = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/f";
        assert!(arn_matches(
            &format!("{group}:*"),
            &format!("{group}:log-stream:s")
        ));
        assert!(arn_matches(
            "arn:aws:logs:*:*:*",
            &format!("{group}:log-stream:s")
        ));
        assert!(arn_matches(
            "arn:aws:logs:us-east-1:123456789012:log-group:/aws/*",
            &format!("{group}:log-stream:s")
        ));
        // Inside a segment (`*x`) the star stays in it.
        assert!(!arn_matches(
            "arn:aws:logs:us-east-1:123456789012:log-group:*s",
            &format!("{group}:log-stream:s")
        ));
        assert!(arn_matches(
            "arn:aws:logs:us-east-1:123456789012:log-group:*f",
            group
        ));
        assert!(!arn_matches("arn:aws:s3:::a?b", "arn:aws:s3:::a:b"));
    }

    #[test]
    fn actions_match_without_case() {
        let pattern = glob("s3:get*", Flavor::Anything);
        assert!(matches(&pattern, &known("s3:GetObject"), true));
        assert!(!matches(&pattern, &known("s3:GetObject"), false));
        assert!(!matches(&pattern, &known("s3:PutObject"), true));
        assert!(matches(
            &glob("*", Flavor::Anything),
            &known("ec2:RunInstances"),
            true
        ));
        assert!(matches(
            &glob("S3:?etObject", Flavor::Anything),
            &known("s3:GetObject"),
            true
        ));
    }

    #[test]
    fn unknown_parts_of_a_request_match_any_value() {
        // A secret named without its suffix: `name-` and six unknown characters.
        let mut secret = known("arn:aws:secretsmanager:us-east-1:1:secret:token-");
        secret.extend([Unit::AnyChar; 6]);
        let exact = "arn:aws:secretsmanager:us-east-1:1:secret:token-AbCdEf";
        assert!(arn_matches(exact, exact));
        assert!(matches(&glob(exact, Flavor::Arn), &secret, false));
        assert!(matches(
            &glob(
                "arn:aws:secretsmanager:us-east-1:1:secret:token-??????",
                Flavor::Arn
            ),
            &secret,
            false
        ));
        assert!(matches(
            &glob(
                "arn:aws:secretsmanager:us-east-1:1:secret:token-*",
                Flavor::Arn
            ),
            &secret,
            false
        ));
        assert!(!matches(
            &glob(
                "arn:aws:secretsmanager:us-east-1:1:secret:token-AbCdE",
                Flavor::Arn
            ),
            &secret,
            false
        ));
        assert!(!matches(
            &glob(
                "arn:aws:secretsmanager:us-east-1:1:secret:other-*",
                Flavor::Arn
            ),
            &secret,
            false
        ));
        // A run: a role named without its path.
        let mut role = known("arn:aws:iam::1:role/");
        role.push(Unit::AnyRun);
        role.extend(known("/web"));
        assert!(matches(
            &glob("arn:aws:iam::1:role/hybridlab/web", Flavor::Arn),
            &role,
            false
        ));
        assert!(matches(
            &glob("arn:aws:iam::1:role/a/b/web", Flavor::Arn),
            &role,
            false
        ));
        assert!(!matches(
            &glob("arn:aws:iam::1:role/hybridlab/api", Flavor::Arn),
            &role,
            false
        ));
    }

    #[test]
    fn variables_are_substituted_escaped_or_left_as_text() {
        let lookup = |key: &str| (key == "aws:username").then(|| "ana".to_owned());
        let substitute = Variables::Substitute(&lookup);
        let home = compile(
            "arn:aws:s3:::b/home/${aws:username}/*",
            Flavor::Arn,
            &substitute,
        )
        .expect("known");
        assert!(matches(&home, &known("arn:aws:s3:::b/home/ana/x"), false));
        assert!(!matches(&home, &known("arn:aws:s3:::b/home/bob/x"), false));
        assert_eq!(compile("a/${aws:userid}", Flavor::Arn, &substitute), None);
        let fallback =
            compile("a/${aws:userid, 'nobody'}", Flavor::Arn, &substitute).expect("default");
        assert!(matches(&fallback, &known("a/nobody"), false));
        let star = compile("a/${*}", Flavor::Arn, &substitute).expect("escape");
        assert!(matches(&star, &known("a/*"), false));
        assert!(!matches(&star, &known("a/b"), false));
        let literal = compile("a/${aws:username}", Flavor::Arn, &Variables::Literal).expect("text");
        assert!(matches(&literal, &known("a/${aws:username}"), false));
        // Garbage does not panic.
        for pattern in ["${", "${}", "$}{", "${a,}", "${a, '}", "}${*"] {
            let _ = compile(pattern, Flavor::Arn, &substitute);
        }
    }
}
