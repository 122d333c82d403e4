//! Tokenizer of FHIRPath expressions. Positions are 0-based character offsets.

use super::SyntaxError;

/// One token kind. Keywords (`and`, `div`, `true`...) are plain identifiers here: the parser
/// decides from their position whether they are operators, literals or element names.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// An identifier; `delimited` when written in backticks, which makes it never a keyword.
    Ident {
        name: String,
        delimited: bool,
    },
    /// A string literal, escapes resolved.
    Str(String),
    /// A number literal as written (`12`, `1.50`).
    Number(String),
    /// A date, date-time or time literal, without its `@` (`2020-01-01`, `T12:30`).
    DateTime(String),
    /// An external constant `%name`, without the `%`.
    Env(String),
    /// `$this`, `$index` or `$total`, without the `$`.
    Special(String),
    /// A punctuation or operator symbol.
    Sym(&'static str),
    Eof,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) pos: usize,
}

/// Symbols, longest first so that `<=` wins over `<`.
const SYMBOLS: &[&str] = &[
    "<=", ">=", "!=", "!~", ".", ",", "(", ")", "[", "]", "{", "}", "+", "-", "*", "/", "&", "|",
    "=", "~", "<", ">",
];

pub(crate) fn tokenize(source: &str) -> Result<Vec<Token>, SyntaxError> {
    let chars: Vec<char> = source.chars().collect();
    let mut lexer = Lexer { chars, pos: 0 };
    let mut tokens = Vec::new();
    loop {
        lexer.skip_blanks()?;
        let start = lexer.pos;
        let Some(c) = lexer.peek(0) else {
            tokens.push(Token {
                tok: Tok::Eof,
                pos: start,
            });
            return Ok(tokens);
        };
        let tok = if c.is_ascii_alphabetic() || c == '_' {
            Tok::Ident {
                name: lexer.word(),
                delimited: false,
            }
        } else if c == '`' {
            Tok::Ident {
                name: lexer.quoted('`')?,
                delimited: true,
            }
        } else if c == '\'' {
            Tok::Str(lexer.quoted('\'')?)
        } else if c.is_ascii_digit() {
            Tok::Number(lexer.number())
        } else if c == '@' {
            Tok::DateTime(lexer.date_time()?)
        } else if c == '%' {
            lexer.pos += 1;
            match lexer.peek(0) {
                Some(c) if c.is_ascii_alphabetic() || c == '_' => Tok::Env(lexer.word()),
                Some('`') => Tok::Env(lexer.quoted('`')?),
                Some('\'') => Tok::Env(lexer.quoted('\'')?),
                _ => {
                    return Err(SyntaxError::new(
                        start,
                        "expected a constant name after '%'",
                    ));
                }
            }
        } else if c == '$' {
            lexer.pos += 1;
            match lexer.peek(0) {
                Some(c) if c.is_ascii_alphabetic() => Tok::Special(lexer.word()),
                _ => return Err(SyntaxError::new(start, "expected a name after '$'")),
            }
        } else if let Some(sym) = SYMBOLS.iter().find(|s| lexer.starts_with(s)) {
            lexer.pos += sym.chars().count();
            Tok::Sym(sym)
        } else {
            return Err(SyntaxError::new(
                start,
                format!("unexpected character '{c}'"),
            ));
        };
        tokens.push(Token { tok, pos: start });
    }
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
}

impl Lexer {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    fn starts_with(&self, s: &str) -> bool {
        s.chars().enumerate().all(|(i, c)| self.peek(i) == Some(c))
    }

    /// Skips white space and `//` or `/* */` comments.
    fn skip_blanks(&mut self) -> Result<(), SyntaxError> {
        loop {
            match (self.peek(0), self.peek(1)) {
                (Some(c), _) if c.is_whitespace() => self.pos += 1,
                (Some('/'), Some('/')) => {
                    while self.peek(0).is_some_and(|c| c != '\n') {
                        self.pos += 1;
                    }
                }
                (Some('/'), Some('*')) => {
                    let start = self.pos;
                    self.pos += 2;
                    while !self.starts_with("*/") {
                        if self.peek(0).is_none() {
                            return Err(SyntaxError::new(start, "unterminated comment"));
                        }
                        self.pos += 1;
                    }
                    self.pos += 2;
                }
                _ => return Ok(()),
            }
        }
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> String {
        let start = self.pos;
        while self.peek(0).is_some_and(&keep) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    fn word(&mut self) -> String {
        self.take_while(|c| c.is_ascii_alphanumeric() || c == '_')
    }

    /// `12` or `12.50`; a `.` not followed by a digit is left for the parser (`1.toString()`).
    fn number(&mut self) -> String {
        let mut text = self.take_while(|c| c.is_ascii_digit());
        if self.peek(0) == Some('.') && self.peek(1).is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
            text.push('.');
            text.push_str(&self.take_while(|c| c.is_ascii_digit()));
        }
        text
    }

    /// A literal between `quote`s, with FHIRPath's escapes.
    fn quoted(&mut self, quote: char) -> Result<String, SyntaxError> {
        let start = self.pos;
        self.pos += 1;
        let mut text = String::new();
        loop {
            let Some(c) = self.peek(0) else {
                return Err(SyntaxError::new(start, "unterminated string or identifier"));
            };
            self.pos += 1;
            match c {
                c if c == quote => return Ok(text),
                '\\' => {
                    let escape_pos = self.pos - 1;
                    let escaped = self.peek(0).ok_or_else(|| {
                        SyntaxError::new(escape_pos, "unterminated escape sequence")
                    })?;
                    self.pos += 1;
                    text.push(match escaped {
                        '\'' | '"' | '`' | '\\' | '/' => escaped,
                        'f' => '\u{c}',
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        'u' => self.unicode_escape(escape_pos)?,
                        _ => {
                            return Err(SyntaxError::new(
                                escape_pos,
                                format!("unknown escape sequence '\\{escaped}'"),
                            ));
                        }
                    });
                }
                c => text.push(c),
            }
        }
    }

    fn unicode_escape(&mut self, escape_pos: usize) -> Result<char, SyntaxError> {
        let hex: String = (0..4).filter_map(|i| self.peek(i)).collect();
        let code = (hex.len() == 4)
            .then(|| u32::from_str_radix(&hex, 16).ok())
            .flatten()
            .and_then(char::from_u32)
            .ok_or_else(|| SyntaxError::new(escape_pos, "invalid \\u escape sequence"))?;
        self.pos += 4;
        Ok(code)
    }

    /// `@2020`, `@2020-01-01T10:00:00.000+02:00`, `@T12:30`... validated for shape only.
    fn date_time(&mut self) -> Result<String, SyntaxError> {
        let start = self.pos;
        self.pos += 1;
        let text = self
            .take_while(|c| c.is_ascii_digit() || matches!(c, '-' | ':' | '.' | '+' | 'T' | 'Z'));
        if super::boundary::is_date_time_literal(&text) {
            Ok(text)
        } else {
            Err(SyntaxError::new(
                start,
                "invalid date, date-time or time literal",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(source: &str) -> Vec<Tok> {
        tokenize(source)
            .unwrap()
            .into_iter()
            .map(|t| t.tok)
            .collect()
    }

    #[test]
    fn tokenizes_paths_operators_and_literals() {
        assert_eq!(
            kinds("name.where(use != 'x\\'y') <= 1.5"),
            vec![
                Tok::Ident {
                    name: "name".into(),
                    delimited: false
                },
                Tok::Sym("."),
                Tok::Ident {
                    name: "where".into(),
                    delimited: false
                },
                Tok::Sym("("),
                Tok::Ident {
                    name: "use".into(),
                    delimited: false
                },
                Tok::Sym("!="),
                Tok::Str("x'y".into()),
                Tok::Sym(")"),
                Tok::Sym("<="),
                Tok::Number("1.5".into()),
                Tok::Eof,
            ]
        );
    }

    #[test]
    fn tokenizes_constants_specials_dates_and_comments() {
        assert_eq!(
            kinds("%rowIndex $this @2020-01 /* c */ `div` // end"),
            vec![
                Tok::Env("rowIndex".into()),
                Tok::Special("this".into()),
                Tok::DateTime("2020-01".into()),
                Tok::Ident {
                    name: "div".into(),
                    delimited: true
                },
                Tok::Eof,
            ]
        );
    }

    #[test]
    fn reports_positions_of_bad_input() {
        let err = tokenize("name @@").unwrap_err();
        assert_eq!(err.position, 5);
        let err = tokenize("name = 'open").unwrap_err();
        assert_eq!(err.position, 7);
        assert!(err.message.contains("unterminated"));
        let err = tokenize("a # b").unwrap_err();
        assert_eq!(err.position, 2);
    }
}
