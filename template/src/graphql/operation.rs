//! A short name for what a request runs, for its trace: the operation's name, or its
//! first root field when the operation is anonymous. It comes from the caller, so only
//! GraphQL names of bounded length are kept.

use juniper::{
    http::{GraphQLBatchRequest, GraphQLRequest},
    parser::{Lexer, Token},
};

/// Longest name kept per operation.
const MAX_NAME: usize = 64;
/// Operations of a batch named, at most; a longer batch ends in `,…`.
const MAX_NAMED: usize = 4;

/// The names of the request's operations, comma-separated; `None` when none has one.
pub fn name(request: &GraphQLBatchRequest) -> Option<String> {
    let operations = match request {
        GraphQLBatchRequest::Single(operation) => std::slice::from_ref(operation),
        GraphQLBatchRequest::Batch(operations) => operations.as_slice(),
    };
    let mut names: Vec<&str> = operations
        .iter()
        .take(MAX_NAMED)
        .filter_map(operation_name)
        .collect();
    if names.is_empty() {
        return None;
    }
    if operations.len() > MAX_NAMED {
        names.push("…");
    }
    Some(names.join(","))
}

fn operation_name(operation: &GraphQLRequest) -> Option<&str> {
    operation
        .operation_name
        .as_deref()
        .filter(|name| is_name(name))
        .or_else(|| declared_or_root_field(&operation.query))
}

/// A name as GraphQL spells them: `[_A-Za-z][_0-9A-Za-z]*`, up to [`MAX_NAME`] bytes.
fn is_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|first| first == b'_' || first.is_ascii_alphabetic())
        && bytes.all(|byte| byte == b'_' || byte.is_ascii_alphanumeric())
        && name.len() <= MAX_NAME
}

/// The first operation's declared name (`query Name …`), else its first root field
/// (the field, not its alias). Fragment definitions are skipped.
fn declared_or_root_field(document: &str) -> Option<&str> {
    let mut tokens = Lexer::new(document)
        .map_while(Result::ok)
        .map(|token| token.item);
    let mut depth = 0usize;
    let mut parentheses = 0usize;
    let mut in_fragment = false;
    let mut after_operation_type = false;
    while let Some(token) = tokens.next() {
        match token {
            Token::Name(name) if after_operation_type => return Some(name).filter(|n| is_name(n)),
            Token::Name("fragment") if depth == 0 => in_fragment = true,
            Token::Name("query" | "mutation" | "subscription") if depth == 0 && !in_fragment => {
                after_operation_type = true;
                continue;
            }
            Token::ParenOpen => parentheses += 1,
            Token::ParenClose => parentheses = parentheses.saturating_sub(1),
            Token::CurlyOpen if parentheses == 0 => {
                if depth == 0 && !in_fragment {
                    return root_field(&mut tokens);
                }
                depth += 1;
            }
            Token::CurlyClose if parentheses == 0 => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    in_fragment = false;
                }
            }
            _ => {}
        }
        after_operation_type = false;
    }
    None
}

/// The first field of a selection set just opened, past its alias.
fn root_field<'a>(tokens: &mut impl Iterator<Item = Token<'a>>) -> Option<&'a str> {
    let Some(Token::Name(first)) = tokens.next() else {
        return None;
    };
    let mut rest = tokens.peekable();
    let field = match rest.peek() {
        Some(Token::Colon) => {
            rest.next();
            match rest.next() {
                Some(Token::Name(field)) => field,
                _ => return None,
            }
        }
        _ => first,
    };
    Some(field).filter(|name| is_name(name))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn single(body: serde_json::Value) -> Option<String> {
        name(&serde_json::from_value(body).unwrap())
    }

    #[test]
    fn a_named_operation_is_named_by_the_request_or_its_document() {
        assert_eq!(
            single(json!({"query": "query A { a } query B { b }", "operationName": "B"})),
            Some("B".into())
        );
        assert_eq!(
            single(json!({"query": "mutation Register($e: String!) { register(email: $e) }"})),
            Some("Register".into())
        );
    }

    #[test]
    fn an_anonymous_operation_is_named_by_its_first_root_field() {
        assert_eq!(
            single(json!({"query": "{ apiVersion }"})),
            Some("apiVersion".into())
        );
        assert_eq!(
            single(
                json!({"query": "mutation($e: In = {a: {b: 1}}) { alias: register(x: {y: 1}) { id } }"})
            ),
            Some("register".into())
        );
        assert_eq!(
            single(json!({"query": "fragment F on Q { x { y } } query { me { ...F } }"})),
            Some("me".into())
        );
    }

    #[test]
    fn caller_input_that_is_no_bounded_name_is_not_kept() {
        let long = "a".repeat(MAX_NAME + 1);
        assert_eq!(
            single(json!({"query": "{ apiVersion }", "operationName": "drop table; --"})),
            Some("apiVersion".into())
        );
        // Braces concatenated: a format string would need them doubled.
        assert_eq!(
            single(json!({"query": format!("query {long} ") + "{ a }"})),
            None
        );
        assert_eq!(single(json!({"query": "not graphql ?"})), None);
    }

    #[test]
    fn a_batch_names_its_first_operations() {
        let operations: Vec<_> = (0..6)
            .map(|i| json!({ "query": (["{ f", &i.to_string(), " }"].concat()) }))
            .collect();
        assert_eq!(single(json!(operations)), Some("f0,f1,f2,f3,…".into()));
    }
}
