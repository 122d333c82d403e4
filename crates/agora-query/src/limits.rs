//! Bounds on what a statement may ask of the planner, checked before it recurses.
//!
//! Parsing, planning, optimizing and even dropping a statement recurse over its expression
//! and plan trees, and a 500-byte `SELECT 1+1+…+1` is a tree 250 levels deep. Unbounded, a
//! deep enough statement overflows any stack and aborts the process. So a statement is
//! measured before it is parsed (its length, and an upper bound of its expressions' depth
//! from its tokens) and its logical plan before it is optimized (its depth, subqueries
//! included); the query threads' stack ([`crate::runtime::QUERY_THREAD_STACK`]) is sized
//! so that the deepest statement within these bounds plans and runs, which the tests check.

use datafusion::common::tree_node::{TreeNodeRecursion, TreeNodeVisitor};
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use crate::{Error, Result};

/// Longest statement accepted, in bytes (generated cohort SQL runs to a few hundred KiB).
pub const MAX_SQL_BYTES: usize = 1 << 20;

/// Most operators one expression may chain (an upper bound of its depth).
pub const MAX_EXPRESSION_DEPTH: usize = 256;

/// Deepest logical plan accepted (nested joins, set operations, CTEs, subqueries).
pub const MAX_PLAN_DEPTH: usize = 256;

fn too_complex(what: &str) -> Error {
    Error::TooComplex(what.into())
}

/// Checks a statement's text: its length, and how deep its expressions can be.
///
/// The depth bound counts operators (`+`, `||`, `AND`, `::`...) per parenthesis level, a
/// comma starting a new expression; a group's depth is added to its enclosing level's.
/// It never underestimates: a chain of `n` operators is a tree of depth `n`.
pub(crate) fn check_statement(sql: &str) -> Result<()> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(too_complex(&format!(
            "the statement is longer than {} KiB",
            MAX_SQL_BYTES >> 10
        )));
    }
    // Unparsable text is left to the parser, which says where.
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize() else {
        return Ok(());
    };
    #[derive(Default)]
    struct Level {
        ops: usize,
        child: usize,
        max: usize,
    }
    let mut levels = vec![Level::default()];
    let mut deepest = 0;
    for token in &tokens {
        let nested = levels.len() > 1;
        let top = levels.last_mut().expect("the outer level is never popped");
        match token {
            Token::LParen | Token::LBracket => levels.push(Level::default()),
            Token::RParen | Token::RBracket if nested => {
                let group = levels.pop().expect("checked by the guard");
                let depth = group.max.max(group.ops + group.child) + 1;
                let parent = levels.last_mut().expect("checked by the guard");
                parent.child = parent.child.max(depth);
            }
            Token::Comma | Token::SemiColon => {
                top.max = top.max.max(top.ops + top.child);
                top.ops = 0;
                top.child = 0;
            }
            token if is_operator(token) => top.ops += 1,
            _ => {}
        }
        let top = levels.last().expect("the outer level is never popped");
        let depth = levels.len() + top.ops + top.child;
        deepest = deepest.max(depth);
        if deepest > MAX_EXPRESSION_DEPTH {
            return Err(too_complex(&format!(
                "an expression chains more than {MAX_EXPRESSION_DEPTH} operators or \
                 nested groups; split it (e.g. into CTEs) or use IN (...) lists"
            )));
        }
    }
    Ok(())
}

fn is_operator(token: &Token) -> bool {
    match token {
        Token::Word(word) => matches!(
            word.keyword,
            Keyword::AND
                | Keyword::OR
                | Keyword::NOT
                | Keyword::IS
                | Keyword::LIKE
                | Keyword::ILIKE
                | Keyword::SIMILAR
                | Keyword::BETWEEN
                | Keyword::IN
                | Keyword::AT
                | Keyword::COLLATE
                | Keyword::UNION
                | Keyword::INTERSECT
                | Keyword::EXCEPT
                | Keyword::JOIN
                | Keyword::CASE
                | Keyword::WHEN
        ),
        Token::Whitespace(_) | Token::EOF | Token::Period => false,
        // Literals, identifiers and placeholders start with a letter, digit, quote or `$`;
        // every other token is an operator or punctuation that can nest.
        other => !other
            .to_string()
            .starts_with(|c: char| c.is_alphanumeric() || "'\"`$_".contains(c)),
    }
}

/// Checks a logical plan's depth, subqueries' plans included, before it is optimized.
pub(crate) fn check_plan(plan: &LogicalPlan) -> Result<()> {
    struct Depth {
        now: usize,
        max: usize,
    }
    impl<'n> TreeNodeVisitor<'n> for Depth {
        type Node = LogicalPlan;
        fn f_down(&mut self, _: &'n LogicalPlan) -> datafusion::error::Result<TreeNodeRecursion> {
            self.now += 1;
            self.max = self.max.max(self.now);
            Ok(if self.max > MAX_PLAN_DEPTH {
                TreeNodeRecursion::Stop
            } else {
                TreeNodeRecursion::Continue
            })
        }
        fn f_up(&mut self, _: &'n LogicalPlan) -> datafusion::error::Result<TreeNodeRecursion> {
            self.now -= 1;
            Ok(TreeNodeRecursion::Continue)
        }
    }
    let mut depth = Depth { now: 0, max: 0 };
    plan.visit_with_subqueries(&mut depth)
        .map_err(|_| too_complex("its plan could not be measured"))?;
    if depth.max > MAX_PLAN_DEPTH {
        return Err(too_complex(&format!(
            "its plan is more than {MAX_PLAN_DEPTH} operators deep (chained CTEs, joins, \
             set operations or subqueries); break it into fewer steps"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(op: &str, n: usize) -> String {
        format!("SELECT {}", vec!["1"; n + 1].join(op))
    }

    #[test]
    fn operator_chains_are_measured_by_their_length() {
        assert!(check_statement(&chain("+", MAX_EXPRESSION_DEPTH - 5)).is_ok());
        assert!(check_statement(&chain("+", MAX_EXPRESSION_DEPTH + 1)).is_err());
        assert!(check_statement(&chain(" || ", MAX_EXPRESSION_DEPTH + 1)).is_err());
        assert!(check_statement(&chain(" AND ", MAX_EXPRESSION_DEPTH + 1)).is_err());
        assert!(check_statement(&chain("::int::", MAX_EXPRESSION_DEPTH / 2 + 1)).is_err());
    }

    #[test]
    fn commas_start_new_expressions_and_groups_add_up() {
        // 2,000 short expressions side by side are shallow.
        let wide = format!("SELECT {}", vec!["a + b"; 2_000].join(", "));
        assert!(check_statement(&wide).is_ok());
        let long_in = format!("SELECT 1 WHERE x IN ({})", vec!["1"; 50_000].join(","));
        assert!(check_statement(&long_in).is_ok());
        // Depth hidden in nested groups still counts.
        let nested = format!(
            "SELECT {}1{}",
            "(1 + ".repeat(MAX_EXPRESSION_DEPTH / 2),
            ")".repeat(MAX_EXPRESSION_DEPTH / 2)
        );
        assert!(check_statement(&nested).is_err());
    }

    #[test]
    fn long_statements_are_refused_before_tokenizing() {
        let long = format!("SELECT '{}'", "x".repeat(MAX_SQL_BYTES));
        let e = check_statement(&long).unwrap_err();
        assert!(e.to_string().contains("too complex"), "{e}");
    }
}
