//! What changed between two versions of a schema, each change classified as breaking
//! (a client written against the old schema may fail against the new one) or safe.
//!
//! `cargo run -- schema diff old.graphql` compares a committed schema with this build's;
//! CI runs it against the default branch's `schema.graphql`. The schemas are parsed, not
//! compared as text, so reordering, descriptions and formatting change nothing.

use std::{collections::BTreeMap, fmt};

use anyhow::Context as _;
use graphql_parser::schema::{
    Definition, Document, EnumType, Field, InputObjectType, InputValue, Type, TypeDefinition,
    parse_schema,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub breaking: bool,
    /// The schema coordinate changed, e.g. `Query.user(id:)`.
    pub at: String,
    pub what: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.breaking { "breaking" } else { "safe" };
        write!(f, "{kind}: {}: {}", self.at, self.what)
    }
}

/// The changes from `old` to `new`, both in SDL: breaking ones first, each group sorted
/// by coordinate.
///
/// # Errors
/// Fails when either document is not a schema.
pub fn diff(old: &str, new: &str) -> anyhow::Result<Vec<Change>> {
    let old = Schema::parse(old).context("the old schema does not parse")?;
    let new = Schema::parse(new).context("the new schema does not parse")?;
    let mut changes = Changes::default();
    changes.roots(&old, &new);
    for (name, old_type) in &old.types {
        match new.types.get(name) {
            None => changes.breaking(name, "type removed"),
            Some(new_type) => changes.type_(name, old_type, new_type),
        }
    }
    for name in new
        .types
        .keys()
        .filter(|name| !old.types.contains_key(*name))
    {
        changes.safe(name, "type added");
    }
    let mut changes = changes.0;
    changes.sort_by(|a, b| (!a.breaking, &a.at).cmp(&(!b.breaking, &b.at)));
    Ok(changes)
}

/// The parts of a schema a client depends on.
struct Schema {
    /// `query`, `mutation` and `subscription` root type names.
    roots: [Option<String>; 3],
    types: BTreeMap<String, TypeDefinition<'static, String>>,
}

impl Schema {
    fn parse(sdl: &str) -> anyhow::Result<Self> {
        let document: Document<'static, String> = parse_schema::<String>(sdl)?.into_static();
        let mut schema = Self {
            roots: [None, None, None],
            types: BTreeMap::new(),
        };
        for definition in document.definitions {
            match definition {
                Definition::SchemaDefinition(roots) => {
                    schema.roots = [roots.query, roots.mutation, roots.subscription];
                }
                Definition::TypeDefinition(definition) => {
                    schema
                        .types
                        .insert(type_name(&definition).to_owned(), definition);
                }
                Definition::TypeExtension(_) | Definition::DirectiveDefinition(_) => {}
            }
        }
        // Without a schema block, the roots are the types of the default names.
        if schema.roots == [None, None, None] {
            schema.roots = ["Query", "Mutation", "Subscription"]
                .map(|name| schema.types.contains_key(name).then(|| name.to_owned()));
        }
        Ok(schema)
    }
}

#[derive(Default)]
struct Changes(Vec<Change>);

/// The interfaces and the fields of an object or an interface.
type ObjectLike<'s> = (&'s [String], &'s [Field<'static, String>]);

impl Changes {
    fn breaking(&mut self, at: &str, what: impl Into<String>) {
        self.push(true, at, what);
    }

    fn safe(&mut self, at: &str, what: impl Into<String>) {
        self.push(false, at, what);
    }

    fn push(&mut self, breaking: bool, at: &str, what: impl Into<String>) {
        self.0.push(Change {
            breaking,
            at: at.to_owned(),
            what: what.into(),
        });
    }

    fn roots(&mut self, old: &Schema, new: &Schema) {
        for (operation, (old, new)) in ["query", "mutation", "subscription"]
            .iter()
            .zip(old.roots.iter().zip(&new.roots))
        {
            match (old, new) {
                (Some(old), Some(new)) if old != new => {
                    self.breaking(operation, format!("root type {old} became {new}"));
                }
                (Some(_), None) => self.breaking(operation, "operation type removed"),
                (None, Some(_)) => self.safe(operation, "operation type added"),
                _ => {}
            }
        }
    }

    fn type_(
        &mut self,
        name: &str,
        old: &TypeDefinition<'static, String>,
        new: &TypeDefinition<'static, String>,
    ) {
        use TypeDefinition::*;
        match (old, new) {
            (Scalar(_), Scalar(_)) => {}
            (Object(old), Object(new)) => {
                self.object_like(
                    name,
                    (&old.implements_interfaces, &old.fields),
                    (&new.implements_interfaces, &new.fields),
                );
            }
            (Interface(old), Interface(new)) => {
                self.object_like(
                    name,
                    (&old.implements_interfaces, &old.fields),
                    (&new.implements_interfaces, &new.fields),
                );
            }
            (Union(old), Union(new)) => self.members(name, "member", &old.types, &new.types),
            (Enum(old), Enum(new)) => self.enum_values(name, old, new),
            (InputObject(old), InputObject(new)) => self.input_fields(name, old, new),
            _ => self.breaking(name, format!("{} became {}", kind(old), kind(new))),
        }
    }

    /// An object or an interface: the interfaces it implements, and its fields.
    fn object_like(&mut self, name: &str, old: ObjectLike<'_>, new: ObjectLike<'_>) {
        self.members(name, "interface", old.0, new.0);
        self.fields(name, old.1, new.1);
    }

    /// Interfaces an object implements, or a union's members: losing one breaks a
    /// client's fragment on it.
    fn members(&mut self, name: &str, member: &str, old: &[String], new: &[String]) {
        for removed in old.iter().filter(|m| !new.contains(m)) {
            self.breaking(name, format!("{member} {removed} removed"));
        }
        for added in new.iter().filter(|m| !old.contains(m)) {
            self.safe(name, format!("{member} {added} added"));
        }
    }

    fn fields(
        &mut self,
        name: &str,
        old: &[Field<'static, String>],
        new: &[Field<'static, String>],
    ) {
        for old_field in old {
            let at = format!("{name}.{}", old_field.name);
            let Some(new_field) = new.iter().find(|f| f.name == old_field.name) else {
                self.breaking(&at, "field removed");
                continue;
            };
            let (from, to) = (&old_field.field_type, &new_field.field_type);
            if from != to {
                let what = format!("type {} became {}", show(from), show(to));
                // A client handles every value the old type allowed; a narrower one is fine.
                if output_narrows(from, to) {
                    self.safe(&at, what);
                } else {
                    self.breaking(&at, what);
                }
            }
            self.arguments(&at, &old_field.arguments, &new_field.arguments);
        }
        for added in new.iter().filter(|f| !old.iter().any(|o| o.name == f.name)) {
            self.safe(&format!("{name}.{}", added.name), "field added");
        }
    }

    fn arguments(
        &mut self,
        field: &str,
        old: &[InputValue<'static, String>],
        new: &[InputValue<'static, String>],
    ) {
        self.inputs(&|name| format!("{field}({name}:)"), "argument", old, new);
    }

    fn input_fields(
        &mut self,
        name: &str,
        old: &InputObjectType<'static, String>,
        new: &InputObjectType<'static, String>,
    ) {
        self.inputs(
            &|field| format!("{name}.{field}"),
            "input field",
            &old.fields,
            &new.fields,
        );
    }

    /// Arguments, or an input object's fields: what clients send.
    fn inputs(
        &mut self,
        at: &dyn Fn(&str) -> String,
        noun: &str,
        old: &[InputValue<'static, String>],
        new: &[InputValue<'static, String>],
    ) {
        for old_input in old {
            let Some(new_input) = new.iter().find(|i| i.name == old_input.name) else {
                self.breaking(&at(&old_input.name), format!("{noun} removed"));
                continue;
            };
            let (from, to) = (&old_input.value_type, &new_input.value_type);
            if from != to {
                let what = format!("type {} became {}", show(from), show(to));
                // Every value a client sent before must still be accepted.
                if input_widens(from, to) {
                    self.safe(&at(&old_input.name), what);
                } else {
                    self.breaking(&at(&old_input.name), what);
                }
            }
        }
        for added in new.iter().filter(|i| !old.iter().any(|o| o.name == i.name)) {
            let required =
                matches!(added.value_type, Type::NonNullType(_)) && added.default_value.is_none();
            if required {
                self.breaking(&at(&added.name), format!("required {noun} added"));
            } else {
                self.safe(&at(&added.name), format!("optional {noun} added"));
            }
        }
    }

    fn enum_values(
        &mut self,
        name: &str,
        old: &EnumType<'static, String>,
        new: &EnumType<'static, String>,
    ) {
        for value in &old.values {
            if !new.values.iter().any(|v| v.name == value.name) {
                self.breaking(&format!("{name}.{}", value.name), "enum value removed");
            }
        }
        for value in &new.values {
            if !old.values.iter().any(|v| v.name == value.name) {
                // Safe to send; a client switching over every value meets a new one.
                self.safe(&format!("{name}.{}", value.name), "enum value added");
            }
        }
    }
}

/// An output type may become non-null, never the reverse or anything else.
fn output_narrows(old: &Type<'static, String>, new: &Type<'static, String>) -> bool {
    match (old, new) {
        (Type::NonNullType(old), Type::NonNullType(new)) => output_narrows(old, new),
        (Type::NonNullType(_), _) => false,
        (old, Type::NonNullType(new)) => output_narrows(old, new),
        (Type::ListType(old), Type::ListType(new)) => output_narrows(old, new),
        (Type::NamedType(old), Type::NamedType(new)) => old == new,
        _ => false,
    }
}

/// An input type may become nullable, never the reverse or anything else.
fn input_widens(old: &Type<'static, String>, new: &Type<'static, String>) -> bool {
    match (old, new) {
        (Type::NonNullType(old), Type::NonNullType(new)) => input_widens(old, new),
        (_, Type::NonNullType(_)) => false,
        (Type::NonNullType(old), new) => input_widens(old, new),
        (Type::ListType(old), Type::ListType(new)) => input_widens(old, new),
        (Type::NamedType(old), Type::NamedType(new)) => old == new,
        _ => false,
    }
}

/// A type as SDL writes it: `[String!]!`.
fn show(ty: &Type<'static, String>) -> String {
    match ty {
        Type::NamedType(name) => name.clone(),
        Type::ListType(inner) => format!("[{}]", show(inner)),
        Type::NonNullType(inner) => format!("{}!", show(inner)),
    }
}

fn type_name<'d>(definition: &'d TypeDefinition<'static, String>) -> &'d str {
    match definition {
        TypeDefinition::Scalar(t) => &t.name,
        TypeDefinition::Object(t) => &t.name,
        TypeDefinition::Interface(t) => &t.name,
        TypeDefinition::Union(t) => &t.name,
        TypeDefinition::Enum(t) => &t.name,
        TypeDefinition::InputObject(t) => &t.name,
    }
}

fn kind(definition: &TypeDefinition<'static, String>) -> &'static str {
    match definition {
        TypeDefinition::Scalar(_) => "a scalar",
        TypeDefinition::Object(_) => "an object",
        TypeDefinition::Interface(_) => "an interface",
        TypeDefinition::Union(_) => "a union",
        TypeDefinition::Enum(_) => "an enum",
        TypeDefinition::InputObject(_) => "an input object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = r#"
        schema { query: Query mutation: Mutation }
        type Query {
          "Described."
          user(id: ID!, active: Boolean): User
          users(first: Int): [User!]!
          version: String
        }
        type Mutation { register(input: RegisterInput!): User! }
        type User implements Node { id: ID! email: String role: Role! }
        interface Node { id: ID! }
        union SearchResult = User
        enum Role { ADMIN USER }
        input RegisterInput { email: String! name: String }
        scalar DateTime
    "#;

    fn changes(after: &str) -> Vec<String> {
        diff(BEFORE, after)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn the_same_schema_reordered_and_redescribed_has_no_change() {
        let reordered = r#"
            scalar DateTime
            input RegisterInput { name: String email: String! }
            enum Role { USER ADMIN }
            union SearchResult = User
            interface Node { id: ID! }
            type User implements Node { role: Role! email: String id: ID! }
            type Mutation { register(input: RegisterInput!): User! }
            type Query {
              version: String
              users(first: Int): [User!]!
              "Described otherwise."
              user(active: Boolean, id: ID!): User
            }
            schema { mutation: Mutation query: Query }
        "#;

        assert_eq!(changes(reordered), Vec::<String>::new());
    }

    #[test]
    fn removing_what_clients_use_is_breaking() {
        let after = r#"
            schema { query: Query }
            type Query { user(id: ID!): User users(first: Int): [User!]! }
            type User implements Node { id: ID! role: Role! }
            interface Node { id: ID! }
            union SearchResult = User
            enum Role { USER }
            input RegisterInput { email: String! name: String }
        "#;

        assert_eq!(
            changes(after),
            [
                "breaking: DateTime: type removed",
                "breaking: Mutation: type removed",
                "breaking: Query.user(active:): argument removed",
                "breaking: Query.version: field removed",
                "breaking: Role.ADMIN: enum value removed",
                "breaking: User.email: field removed",
                "breaking: mutation: operation type removed",
            ]
        );
    }

    #[test]
    fn output_types_may_narrow_and_inputs_may_widen_but_not_the_reverse() {
        let after = BEFORE
            .replace(
                "user(id: ID!, active: Boolean): User",
                "user(id: ID, active: Boolean!): User!",
            )
            .replace("users(first: Int): [User!]!", "users(first: Int): [User]!")
            .replace("email: String! name: String", "email: String name: String!")
            .replace("version: String", "version: Int");

        assert_eq!(
            changes(&after),
            [
                "breaking: Query.user(active:): type Boolean became Boolean!",
                "breaking: Query.users: type [User!]! became [User]!",
                "breaking: Query.version: type String became Int",
                "breaking: RegisterInput.name: type String became String!",
                "safe: Query.user: type User became User!",
                "safe: Query.user(id:): type ID! became ID",
                "safe: RegisterInput.email: type String! became String",
            ]
        );
    }

    #[test]
    fn additions_are_safe_unless_clients_must_now_send_them() {
        let after = BEFORE
            .replace(
                "users(first: Int)",
                "users(first: Int, after: String, orderBy: Order!)",
            )
            .replace(
                "email: String! name: String",
                "email: String! name: String locale: String! = \"en\" invite: ID!",
            )
            .replace(
                "enum Role { ADMIN USER }",
                "enum Role { ADMIN USER GUEST } enum Order { ASC DESC }",
            )
            .replace(
                "union SearchResult = User",
                "union SearchResult = User | Role2 type Role2 { id: ID! }",
            )
            .replace("version: String", "version: String\n  health: Boolean");

        assert_eq!(
            changes(&after),
            [
                "breaking: Query.users(orderBy:): required argument added",
                "breaking: RegisterInput.invite: required input field added",
                "safe: Order: type added",
                "safe: Query.health: field added",
                "safe: Query.users(after:): optional argument added",
                "safe: RegisterInput.locale: optional input field added",
                "safe: Role.GUEST: enum value added",
                "safe: Role2: type added",
                "safe: SearchResult: member Role2 added",
            ]
        );
    }

    #[test]
    fn a_type_changing_kind_or_losing_an_interface_is_breaking() {
        let after = BEFORE
            .replace("type User implements Node {", "type User {")
            .replace("scalar DateTime", "type DateTime { iso: String! }")
            .replace(
                "union SearchResult = User",
                "union SearchResult = Role3 type Role3 { id: ID! }",
            );

        assert_eq!(
            changes(&after),
            [
                "breaking: DateTime: a scalar became an object",
                "breaking: SearchResult: member User removed",
                "breaking: User: interface Node removed",
                "safe: Role3: type added",
                "safe: SearchResult: member Role3 added",
            ]
        );
    }

    #[test]
    fn a_document_that_is_no_schema_is_an_error() {
        let error = diff(BEFORE, "type Query {").unwrap_err();

        assert!(format!("{error:#}").contains("the new schema does not parse"));
    }
}
