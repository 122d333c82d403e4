//! Pratt parser of FHIRPath into a small AST. Functions and operators outside the supported
//! subset are rejected here, at parse time, so a ViewDefinition fails validation rather than
//! on the first resource that reaches the unsupported part.

use serde_json::{Number, Value};

use super::SyntaxError;
use super::boundary;
use super::lexer::{Tok, Token, tokenize};
use super::types::normalize_type_name;

/// An expression node; `pos` is the character offset reported by evaluation errors.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) kind: NodeKind,
    pub(crate) pos: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NodeKind {
    /// A literal with its FHIR type (`'a'` is a `string`, `@2020` a `date`...).
    Literal {
        value: Value,
        fhir_type: &'static str,
    },
    /// `{}`, the empty collection.
    Empty,
    /// `$this`.
    This,
    /// `%name`.
    Env(String),
    /// `base.name`, or `name` applied to the focus when `base` is `None`.
    Member {
        base: Option<Box<Node>>,
        name: String,
    },
    /// `base.function(args)`, or applied to the focus when `base` is `None`.
    Call {
        base: Option<Box<Node>>,
        function: Function,
        args: Vec<Node>,
    },
    /// `base[index]`.
    Index { base: Box<Node>, index: Box<Node> },
    /// Unary minus.
    Negate(Box<Node>),
    Binary {
        op: BinaryOp,
        left: Box<Node>,
        right: Box<Node>,
    },
}

/// The supported functions: those SQL-on-FHIR v2 requires of a runner.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Function {
    Where,
    Exists,
    Empty,
    First,
    Not,
    Join,
    /// `ofType(T)`, with `T` without its `FHIR.` namespace.
    OfType(String),
    Extension,
    GetResourceKey,
    /// `getReferenceKey([T])`.
    GetReferenceKey(Option<String>),
    LowBoundary,
    HighBoundary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinaryOp {
    Implies,
    Or,
    Xor,
    And,
    Eq,
    NotEq,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
}

impl BinaryOp {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Implies => "implies",
            BinaryOp::Or => "or",
            BinaryOp::Xor => "xor",
            BinaryOp::And => "and",
            BinaryOp::Eq => "=",
            BinaryOp::NotEq => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
        }
    }
}

/// Precedence of unary minus: above every binary operator, below `.` and `[]`.
const UNARY_PRECEDENCE: u8 = 11;

/// Deeper nesting than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 100;

/// A binary operator token: supported (with its operator) or known but unsupported.
enum Infix {
    Supported(BinaryOp),
    Unsupported(&'static str),
}

/// FHIRPath's operator precedence, highest binding last (`implies` 1 ... `*` 10).
fn infix(tok: &Tok) -> Option<(Infix, u8)> {
    use Infix::{Supported as S, Unsupported as U};
    let found = match tok {
        Tok::Sym(sym) => match *sym {
            "*" => (S(BinaryOp::Mul), 10),
            "/" => (S(BinaryOp::Div), 10),
            "+" => (S(BinaryOp::Add), 9),
            "-" => (S(BinaryOp::Sub), 9),
            "&" => (U("&"), 9),
            "|" => (U("|"), 7),
            "<" => (S(BinaryOp::Lt), 6),
            "<=" => (S(BinaryOp::Le), 6),
            ">" => (S(BinaryOp::Gt), 6),
            ">=" => (S(BinaryOp::Ge), 6),
            "=" => (S(BinaryOp::Eq), 5),
            "!=" => (S(BinaryOp::NotEq), 5),
            "~" => (U("~"), 5),
            "!~" => (U("!~"), 5),
            _ => return None,
        },
        Tok::Ident {
            name,
            delimited: false,
        } => match name.as_str() {
            "div" => (U("div"), 10),
            "mod" => (U("mod"), 10),
            "is" => (U("is"), 8),
            "as" => (U("as"), 8),
            "in" => (U("in"), 4),
            "contains" => (U("contains"), 4),
            "and" => (S(BinaryOp::And), 3),
            "or" => (S(BinaryOp::Or), 2),
            "xor" => (S(BinaryOp::Xor), 2),
            "implies" => (S(BinaryOp::Implies), 1),
            _ => return None,
        },
        _ => return None,
    };
    Some(found)
}

pub(crate) fn parse(source: &str) -> Result<Node, SyntaxError> {
    let tokens = tokenize(source)?;
    let mut parser = Parser {
        tokens,
        at: 0,
        depth: 0,
    };
    let node = parser.expression(1)?;
    match &parser.peek().tok {
        Tok::Eof => Ok(node),
        _ => Err(parser.unexpected("an operator or the end of the expression")),
    }
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
}

impl Parser {
    /// The current token; past the end, the final `Eof` (so stepping back with `at -= 1`
    /// after an `advance` is always valid).
    fn peek(&self) -> &Token {
        let last = self.tokens.len() - 1;
        &self.tokens[self.at.min(last)]
    }

    fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        self.at += 1;
        token
    }

    fn eat(&mut self, sym: &str) -> bool {
        if matches!(self.peek().tok, Tok::Sym(s) if s == sym) {
            self.advance();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, sym: &str) -> Result<(), SyntaxError> {
        if self.eat(sym) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("'{sym}'")))
        }
    }

    fn unexpected(&self, expected: &str) -> SyntaxError {
        let token = self.peek();
        let found = match &token.tok {
            Tok::Ident { name, .. } => format!("'{name}'"),
            Tok::Str(_) => "a string".to_owned(),
            Tok::Number(n) => format!("number {n}"),
            Tok::DateTime(d) => format!("'@{d}'"),
            Tok::Env(name) => format!("'%{name}'"),
            Tok::Special(name) => format!("'${name}'"),
            Tok::Sym(s) => format!("'{s}'"),
            Tok::Eof => "the end of the expression".to_owned(),
        };
        SyntaxError::new(token.pos, format!("expected {expected}, found {found}"))
    }

    /// An expression whose binary operators all bind at least as tightly as `min_precedence`.
    fn expression(&mut self, min_precedence: u8) -> Result<Node, SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(SyntaxError::new(
                self.peek().pos,
                "expression nested too deeply",
            ));
        }
        let mut left = self.unary()?;
        while let Some((op, precedence)) = infix(&self.peek().tok) {
            if precedence < min_precedence {
                break;
            }
            let token = self.advance();
            let op = match op {
                Infix::Supported(op) => op,
                Infix::Unsupported(symbol) => {
                    return Err(SyntaxError::new(
                        token.pos,
                        format!("operator '{symbol}' is not supported"),
                    ));
                }
            };
            // All FHIRPath binary operators are left-associative.
            let right = self.expression(precedence + 1)?;
            left = Node {
                kind: NodeKind::Binary {
                    op,
                    left: Box::new(left),
                    right: Box::new(right),
                },
                pos: token.pos,
            };
        }
        self.depth -= 1;
        Ok(left)
    }

    fn unary(&mut self) -> Result<Node, SyntaxError> {
        let pos = self.peek().pos;
        if self.eat("-") {
            let operand = self.expression(UNARY_PRECEDENCE)?;
            return Ok(Node {
                kind: NodeKind::Negate(Box::new(operand)),
                pos,
            });
        }
        if self.eat("+") {
            return self.expression(UNARY_PRECEDENCE);
        }
        let term = self.term()?;
        self.postfix(term)
    }

    /// `.member`, `.function(...)` and `[index]` chains.
    fn postfix(&mut self, mut node: Node) -> Result<Node, SyntaxError> {
        loop {
            let pos = self.peek().pos;
            if self.eat(".") {
                let token = self.advance();
                let Tok::Ident { name, .. } = token.tok else {
                    self.at -= 1;
                    return Err(self.unexpected("a name after '.'"));
                };
                node = self.invocation(Some(node), name, token.pos)?;
            } else if self.eat("[") {
                let index = self.expression(1)?;
                self.expect("]")?;
                node = Node {
                    kind: NodeKind::Index {
                        base: Box::new(node),
                        index: Box::new(index),
                    },
                    pos,
                };
            } else {
                return Ok(node);
            }
        }
    }

    fn term(&mut self) -> Result<Node, SyntaxError> {
        let token = self.advance();
        let pos = token.pos;
        let kind = match token.tok {
            Tok::Number(text) => number_literal(&text, pos)?,
            Tok::Str(text) => NodeKind::Literal {
                value: Value::String(text),
                fhir_type: "string",
            },
            Tok::DateTime(text) => {
                let (kind, value) = boundary::literal_type(&text).ok_or_else(|| {
                    SyntaxError::new(pos, "invalid date, date-time or time literal")
                })?;
                NodeKind::Literal {
                    value: Value::String(value.to_owned()),
                    fhir_type: kind.type_name(),
                }
            }
            Tok::Env(name) => NodeKind::Env(name),
            Tok::Special(name) => match name.as_str() {
                "this" => NodeKind::This,
                _ => return Err(SyntaxError::new(pos, format!("'${name}' is not supported"))),
            },
            Tok::Ident {
                name,
                delimited: false,
            } if name == "true" || name == "false" => NodeKind::Literal {
                value: Value::Bool(name == "true"),
                fhir_type: "boolean",
            },
            Tok::Ident { name, .. } => return self.invocation(None, name, pos),
            Tok::Sym("(") => {
                let inner = self.expression(1)?;
                self.expect(")")?;
                return Ok(inner);
            }
            Tok::Sym("{") => {
                self.expect("}")?;
                NodeKind::Empty
            }
            _ => {
                self.at -= 1;
                return Err(self.unexpected("an expression"));
            }
        };
        Ok(Node { kind, pos })
    }

    /// A member access or, when followed by `(`, a function call.
    fn invocation(
        &mut self,
        base: Option<Node>,
        name: String,
        pos: usize,
    ) -> Result<Node, SyntaxError> {
        let base = base.map(Box::new);
        if !self.eat("(") {
            return Ok(Node {
                kind: NodeKind::Member { base, name },
                pos,
            });
        }
        let mut args = Vec::new();
        if !self.eat(")") {
            loop {
                args.push(self.expression(1)?);
                if self.eat(")") {
                    break;
                }
                if !self.eat(",") {
                    return Err(self.unexpected("',' or ')'"));
                }
            }
        }
        let function = function(&name, &args, pos)?;
        // Type arguments are names, not expressions to evaluate.
        if matches!(
            function,
            Function::OfType(_) | Function::GetReferenceKey(Some(_))
        ) {
            args.clear();
        }
        Ok(Node {
            kind: NodeKind::Call {
                base,
                function,
                args,
            },
            pos,
        })
    }
}

fn number_literal(text: &str, pos: usize) -> Result<NodeKind, SyntaxError> {
    let out_of_range = || SyntaxError::new(pos, "number literal out of range");
    if text.contains('.') {
        let value: f64 = text.parse().map_err(|_| out_of_range())?;
        let number = Number::from_f64(value).ok_or_else(out_of_range)?;
        Ok(NodeKind::Literal {
            value: Value::Number(number),
            fhir_type: "decimal",
        })
    } else {
        let value: i64 = text.parse().map_err(|_| out_of_range())?;
        Ok(NodeKind::Literal {
            value: Value::from(value),
            fhir_type: "integer",
        })
    }
}

/// Resolves a function name and checks its arguments.
fn function(name: &str, args: &[Node], pos: usize) -> Result<Function, SyntaxError> {
    let arity = |allowed: &[usize]| -> Result<(), SyntaxError> {
        if allowed.contains(&args.len()) {
            Ok(())
        } else {
            let expected = allowed
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(" or ");
            Err(SyntaxError::new(
                pos,
                format!("{name}() takes {expected} argument(s), not {}", args.len()),
            ))
        }
    };
    let function = match name {
        "where" => {
            arity(&[1])?;
            Function::Where
        }
        "exists" => {
            arity(&[0, 1])?;
            Function::Exists
        }
        "empty" => {
            arity(&[0])?;
            Function::Empty
        }
        "first" => {
            arity(&[0])?;
            Function::First
        }
        "not" => {
            arity(&[0])?;
            Function::Not
        }
        "join" => {
            arity(&[0, 1])?;
            Function::Join
        }
        "ofType" => {
            arity(&[1])?;
            Function::OfType(type_name(&args[0])?)
        }
        "extension" => {
            arity(&[1])?;
            Function::Extension
        }
        "getResourceKey" => {
            arity(&[0])?;
            Function::GetResourceKey
        }
        "getReferenceKey" => {
            arity(&[0, 1])?;
            Function::GetReferenceKey(args.first().map(type_name).transpose()?)
        }
        "lowBoundary" => {
            arity(&[0])?;
            Function::LowBoundary
        }
        "highBoundary" => {
            arity(&[0])?;
            Function::HighBoundary
        }
        _ => {
            return Err(SyntaxError::new(
                pos,
                format!("unknown or unsupported function '{name}'"),
            ));
        }
    };
    Ok(function)
}

/// A type specifier argument: `Quantity`, `FHIR.Quantity` or `System.String`.
fn type_name(arg: &Node) -> Result<String, SyntaxError> {
    let not_a_type = || SyntaxError::new(arg.pos, "expected a type name");
    let NodeKind::Member { base, name } = &arg.kind else {
        return Err(not_a_type());
    };
    let qualified = match base.as_deref() {
        None => name.clone(),
        Some(Node {
            kind:
                NodeKind::Member {
                    base: None,
                    name: namespace,
                },
            ..
        }) if namespace == "FHIR" || namespace == "System" => format!("{namespace}.{name}"),
        Some(_) => return Err(not_a_type()),
    };
    Ok(normalize_type_name(&qualified))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders the AST fully parenthesised, to check precedence.
    fn show(node: &Node) -> String {
        match &node.kind {
            NodeKind::Literal { value, .. } => value.to_string(),
            NodeKind::Empty => "{}".into(),
            NodeKind::This => "$this".into(),
            NodeKind::Env(name) => format!("%{name}"),
            NodeKind::Member { base: None, name } => name.clone(),
            NodeKind::Member {
                base: Some(base),
                name,
            } => format!("{}.{name}", show(base)),
            NodeKind::Call {
                base,
                function,
                args,
            } => {
                let args: Vec<String> = args.iter().map(show).collect();
                let call = format!("{function:?}({})", args.join(", "));
                match base {
                    Some(base) => format!("{}.{call}", show(base)),
                    None => call,
                }
            }
            NodeKind::Index { base, index } => format!("{}[{}]", show(base), show(index)),
            NodeKind::Negate(operand) => format!("(-{})", show(operand)),
            NodeKind::Binary { op, left, right } => {
                format!("({} {} {})", show(left), op.symbol(), show(right))
            }
        }
    }

    fn parsed(source: &str) -> String {
        show(&parse(source).unwrap())
    }

    fn error(source: &str) -> SyntaxError {
        parse(source).unwrap_err()
    }

    #[test]
    fn precedence_follows_the_specification() {
        assert_eq!(parsed("a or b and c"), "(a or (b and c))");
        assert_eq!(parsed("a and b or c"), "((a and b) or c)");
        assert_eq!(parsed("a = 1 and b != 2"), "((a = 1) and (b != 2))");
        assert_eq!(parsed("1 + 2 * 3 < 7"), "((1 + (2 * 3)) < 7)");
        assert_eq!(parsed("a implies b or c"), "(a implies (b or c))");
        assert_eq!(parsed("-a.b * 2"), "((-a.b) * 2)");
        assert_eq!(parsed("x = y = z"), "((x = y) = z)");
        assert_eq!(parsed("10 - 2 - 3"), "((10 - 2) - 3)");
    }

    #[test]
    fn parses_invocations_indexers_and_literals() {
        assert_eq!(
            parsed("name.where(use = 'official').family[0]"),
            "name.Where((use = \"official\")).family[0]"
        );
        assert_eq!(
            parsed("(gender = 'male').not()"),
            "(gender = \"male\").Not()"
        );
        assert_eq!(
            parsed("value.ofType(FHIR.Quantity)"),
            "value.OfType(\"Quantity\")()"
        );
        assert_eq!(
            parsed("ref.getReferenceKey(Patient) = getResourceKey()"),
            "(ref.GetReferenceKey(Some(\"Patient\"))() = GetResourceKey())"
        );
        assert_eq!(parsed("name[%i].`div`"), "name[%i].div");
        assert_eq!(parsed("true and {}.empty()"), "(true and {}.Empty())");
        assert_eq!(parsed("$this"), "$this");
    }

    #[test]
    fn keywords_after_a_dot_are_names() {
        assert_eq!(parsed("text.div"), "text.div");
        assert_eq!(parsed("a.and"), "a.and");
    }

    #[test]
    fn literal_types() {
        let literal = |source: &str| match parse(source).unwrap().kind {
            NodeKind::Literal { fhir_type, .. } => fhir_type,
            other => panic!("not a literal: {other:?}"),
        };
        assert_eq!(literal("1"), "integer");
        assert_eq!(literal("1.50"), "decimal");
        assert_eq!(literal("'x'"), "string");
        assert_eq!(literal("false"), "boolean");
        assert_eq!(literal("@2020-01"), "date");
        assert_eq!(literal("@2020-01-01T10:00Z"), "dateTime");
        assert_eq!(literal("@T10:00"), "time");
    }

    #[test]
    fn errors_carry_positions() {
        let e = error("name.where(use = 'x'");
        assert_eq!(e.position, 20);
        assert_eq!(
            e.message,
            "expected ',' or ')', found the end of the expression"
        );

        let e = error("name.foo()");
        assert_eq!(e.position, 5);
        assert!(e.message.contains("'foo'"));

        let e = error("a | b");
        assert_eq!(e.position, 2);
        assert!(e.message.contains("'|' is not supported"));

        let e = error("first(1)");
        assert!(e.message.contains("first() takes 0 argument(s), not 1"));

        let e = error("name.");
        assert_eq!(e.position, 5);

        let e = error("a b");
        assert_eq!(e.position, 2);

        let e = error("value.ofType('x')");
        assert_eq!(e.position, 13);
        assert!(e.message.contains("type name"));

        let e = error("");
        assert!(e.message.contains("expected an expression"));

        let e = error("99999999999999999999");
        assert!(e.message.contains("out of range"));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let source = format!("{}1{}", "(".repeat(500), ")".repeat(500));
        assert!(error(&source).message.contains("nested too deeply"));
    }
}
