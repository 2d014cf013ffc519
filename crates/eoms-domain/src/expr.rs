//! The condition language of process definitions.
//!
//! ```text
//! expr    := or
//! or      := and ( "||" and )*
//! and     := unary ( "&&" unary )*
//! unary   := "!" unary | compare
//! compare := primary ( ("=="|"!="|"<"|"<="|">"|">=") primary | "in" list | "not" "in" list )?
//! primary := string | integer | true | false | ident | ident "(" args ")" | "(" expr ")" | list
//! list    := "[" ( primary ( "," primary )* )? "]"
//! ```
//! Identifiers name a field of the process or a built-in (see [`BUILTINS`]). A field with no value
//! is `null`: it equals nothing but `null`, and is false. Functions: [`FUNCTIONS`].

use crate::value::Value;
use std::borrow::Cow;
use std::fmt;

/// Built-in names every condition can use besides the process' fields.
pub const BUILTINS: &[(&str, &str)] = &[
    ("span", "the ticket's span key"),
    ("status", "the ticket's status (open, returned, replied, closed, cancelled, voided)"),
    ("is_root", "true when the acting sub-order is the ticket's root flow (not a forked sub-order)"),
    ("suborder_org", "the org unit the acting sub-order works for"),
    ("creator_org", "the creator's org unit"),
    ("creator_level", "the creator's level: hq, province or city"),
    ("creator_province", "the creator's province (hq for HQ users)"),
    ("actor_level", "the acting user's level: hq, province or city"),
    ("hq", "the root org unit"),
    ("now", "the time of the action"),
    ("deadline", "the ticket's overall complete deadline"),
    ("redispatch_count", "how often the ticket was re-dispatched"),
    ("null", "no value"),
];

/// Functions: name, arity, description.
pub const FUNCTIONS: &[(&str, usize, &str)] = &[
    ("only", 2, "only(list, v): the list is not empty and every item equals v"),
    ("contains", 2, "contains(list, v): some item equals v"),
    ("len", 1, "len(list): the number of items (0 for null)"),
    ("is_set", 1, "is_set(x): x has a value"),
    ("province_of", 1, "province_of(org): the province an org unit belongs to"),
    ("level_of", 1, "level_of(org): hq, province or city"),
    ("all_at_level", 2, "all_at_level(orgs, level): every org unit in the list is at that level"),
];

/// A built-in name, resolved when the condition is parsed (a field may not take such a name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    Span,
    Status,
    IsRoot,
    SuborderOrg,
    CreatorOrg,
    CreatorLevel,
    CreatorProvince,
    ActorLevel,
    Hq,
    Now,
    Deadline,
    RedispatchCount,
}

impl Builtin {
    pub fn from_name(name: &str) -> Option<Builtin> {
        Some(match name {
            "span" => Builtin::Span,
            "status" => Builtin::Status,
            "is_root" => Builtin::IsRoot,
            "suborder_org" => Builtin::SuborderOrg,
            "creator_org" => Builtin::CreatorOrg,
            "creator_level" => Builtin::CreatorLevel,
            "creator_province" => Builtin::CreatorProvince,
            "actor_level" => Builtin::ActorLevel,
            "hq" => Builtin::Hq,
            "now" => Builtin::Now,
            "deadline" => Builtin::Deadline,
            "redispatch_count" => Builtin::RedispatchCount,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Lit(Value),
    Null,
    /// A field of the process.
    Var(String),
    Builtin(Builtin),
    Call(Func, Vec<Expr>),
    List(Vec<Expr>),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp(Box<Expr>, CmpOp, Box<Expr>),
    In(Box<Expr>, Box<Expr>, bool),
}

/// A function, resolved when the condition is parsed (see [`FUNCTIONS`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Func {
    Only,
    Contains,
    Len,
    IsSet,
    ProvinceOf,
    LevelOf,
    AllAtLevel,
    /// Not a function: refused when the definition is compiled.
    Unknown(String),
}

impl Func {
    pub fn from_name(name: &str) -> Func {
        match name {
            "only" => Func::Only,
            "contains" => Func::Contains,
            "len" => Func::Len,
            "is_set" => Func::IsSet,
            "province_of" => Func::ProvinceOf,
            "level_of" => Func::LevelOf,
            "all_at_level" => Func::AllAtLevel,
            other => Func::Unknown(other.to_string()),
        }
    }
    pub fn name(&self) -> &str {
        match self {
            Func::Only => "only",
            Func::Contains => "contains",
            Func::Len => "len",
            Func::IsSet => "is_set",
            Func::ProvinceOf => "province_of",
            Func::LevelOf => "level_of",
            Func::AllAtLevel => "all_at_level",
            Func::Unknown(n) => n,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A parse error with its byte offset inside the expression's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExprError {
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at character {})", self.message, self.offset + 1)
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Str(String),
    Int(i64),
    Ident(String),
    Sym(&'static str),
}

fn lex(src: &str) -> Result<Vec<(usize, Tok)>, ExprError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if c == b'\'' || c == b'"' {
            let end = src[i + 1..]
                .find(c as char)
                .ok_or(ExprError { offset: start, message: "unterminated string".into() })?;
            out.push((start, Tok::Str(src[i + 1..i + 1 + end].to_string())));
            i += end + 2;
        } else if c.is_ascii_digit() || (c == b'-' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let n = src[start..i]
                .parse()
                .map_err(|_| ExprError { offset: start, message: "number out of range".into() })?;
            out.push((start, Tok::Int(n)));
        } else if c.is_ascii_alphabetic() || c == b'_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push((start, Tok::Ident(src[start..i].to_string())));
        } else {
            let two = src.get(i..i + 2).unwrap_or("");
            let sym = ["==", "!=", "<=", ">=", "&&", "||"].into_iter().find(|s| *s == two);
            let sym = match sym {
                Some(s) => s,
                None => match c {
                    b'<' => "<",
                    b'>' => ">",
                    b'!' => "!",
                    b'(' => "(",
                    b')' => ")",
                    b'[' => "[",
                    b']' => "]",
                    b',' => ",",
                    _ => {
                        return Err(ExprError {
                            offset: start,
                            message: format!("unexpected character '{}'", &src[i..].chars().next().unwrap_or('?')),
                        });
                    }
                },
            };
            i += sym.len();
            out.push((start, Tok::Sym(sym)));
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.1)
    }
    fn offset(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |t| t.0)
    }
    fn err<T>(&self, message: impl Into<String>) -> Result<T, ExprError> {
        Err(ExprError { offset: self.offset(), message: message.into() })
    }
    fn eat(&mut self, sym: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Sym(s)) if *s == sym) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, sym: &str) -> Result<(), ExprError> {
        if self.eat(sym) { Ok(()) } else { self.err(format!("expected '{sym}'")) }
    }
    fn or(&mut self) -> Result<Expr, ExprError> {
        let mut l = self.and()?;
        while self.eat("||") {
            l = Expr::Or(Box::new(l), Box::new(self.and()?));
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut l = self.unary()?;
        while self.eat("&&") {
            l = Expr::And(Box::new(l), Box::new(self.unary()?));
        }
        Ok(l)
    }
    fn unary(&mut self) -> Result<Expr, ExprError> {
        if self.eat("!") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.compare()
    }
    fn compare(&mut self) -> Result<Expr, ExprError> {
        let l = self.primary()?;
        let op = match self.peek() {
            Some(Tok::Sym("==")) => CmpOp::Eq,
            Some(Tok::Sym("!=")) => CmpOp::Ne,
            Some(Tok::Sym("<")) => CmpOp::Lt,
            Some(Tok::Sym("<=")) => CmpOp::Le,
            Some(Tok::Sym(">")) => CmpOp::Gt,
            Some(Tok::Sym(">=")) => CmpOp::Ge,
            Some(Tok::Ident(w)) if w == "in" => {
                self.pos += 1;
                return Ok(Expr::In(Box::new(l), Box::new(self.primary()?), false));
            }
            Some(Tok::Ident(w)) if w == "not" => {
                self.pos += 1;
                if !matches!(self.peek(), Some(Tok::Ident(w)) if w == "in") {
                    return self.err("expected 'in' after 'not'");
                }
                self.pos += 1;
                return Ok(Expr::In(Box::new(l), Box::new(self.primary()?), true));
            }
            _ => return Ok(l),
        };
        self.pos += 1;
        Ok(Expr::Cmp(Box::new(l), op, Box::new(self.primary()?)))
    }
    fn primary(&mut self) -> Result<Expr, ExprError> {
        let Some(tok) = self.peek().cloned() else {
            return self.err("expected a value");
        };
        self.pos += 1;
        match tok {
            Tok::Str(s) => Ok(Expr::Lit(Value::text(&s))),
            Tok::Int(i) => Ok(Expr::Lit(Value::Int(i))),
            Tok::Ident(w) if w == "true" => Ok(Expr::Lit(Value::Bool(true))),
            Tok::Ident(w) if w == "false" => Ok(Expr::Lit(Value::Bool(false))),
            Tok::Ident(w) if w == "null" => Ok(Expr::Null),
            Tok::Ident(w) if !matches!(self.peek(), Some(Tok::Sym("("))) && Builtin::from_name(&w).is_some() => {
                Ok(Expr::Builtin(Builtin::from_name(&w).expect("checked")))
            }
            Tok::Ident(w) => {
                if self.eat("(") {
                    let mut args = Vec::new();
                    if !self.eat(")") {
                        loop {
                            args.push(self.or()?);
                            if self.eat(")") {
                                break;
                            }
                            self.expect(",")?;
                        }
                    }
                    Ok(Expr::Call(Func::from_name(&w), args))
                } else {
                    Ok(Expr::Var(w))
                }
            }
            Tok::Sym("(") => {
                let e = self.or()?;
                self.expect(")")?;
                Ok(e)
            }
            Tok::Sym("[") => {
                let mut items = Vec::new();
                if !self.eat("]") {
                    loop {
                        items.push(self.primary()?);
                        if self.eat("]") {
                            break;
                        }
                        self.expect(",")?;
                    }
                }
                Ok(Expr::List(items))
            }
            Tok::Sym(s) => {
                self.pos -= 1;
                self.err(format!("unexpected '{s}'"))
            }
        }
    }
}

impl Expr {
    pub fn parse(src: &str) -> Result<Expr, ExprError> {
        let toks = lex(src)?;
        if toks.is_empty() {
            return Err(ExprError { offset: 0, message: "empty condition".into() });
        }
        let mut p = Parser { toks, pos: 0, end: src.len() };
        let e = p.or()?;
        if p.pos < p.toks.len() {
            return p.err("unexpected text after the condition");
        }
        Ok(e)
    }

    /// Every identifier the expression reads, for validation against the process' fields.
    pub fn vars(&self, out: &mut Vec<String>) {
        match self {
            Expr::Var(v) => out.push(v.clone()),
            Expr::Lit(_) | Expr::Null | Expr::Builtin(_) => {}
            Expr::Call(_, a) | Expr::List(a) => a.iter().for_each(|e| e.vars(out)),
            Expr::Not(e) => e.vars(out),
            Expr::And(a, b) | Expr::Or(a, b) | Expr::Cmp(a, _, b) | Expr::In(a, b, _) => {
                a.vars(out);
                b.vars(out);
            }
        }
    }

    /// Every function call with its arity.
    pub fn calls(&self, out: &mut Vec<(String, usize)>) {
        match self {
            Expr::Call(f, a) => {
                out.push((f.name().to_string(), a.len()));
                a.iter().for_each(|e| e.calls(out));
            }
            Expr::Var(_) | Expr::Lit(_) | Expr::Null | Expr::Builtin(_) => {}
            Expr::List(a) => a.iter().for_each(|e| e.calls(out)),
            Expr::Not(e) => e.calls(out),
            Expr::And(a, b) | Expr::Or(a, b) | Expr::Cmp(a, _, b) | Expr::In(a, b, _) => {
                a.calls(out);
                b.calls(out);
            }
        }
    }

    pub fn eval(&self, env: &dyn Env) -> Option<Value> {
        self.value(env).map(Cow::into_owned)
    }

    /// Evaluates without copying what it reads: literals and field values are borrowed.
    fn value<'a>(&'a self, env: &'a dyn Env) -> Option<Cow<'a, Value>> {
        let bool = |b: bool| Some(Cow::Owned(Value::Bool(b)));
        match self {
            Expr::Lit(v) => Some(Cow::Borrowed(v)),
            Expr::Null => None,
            Expr::Var(v) => env.get_ref(v),
            Expr::Builtin(b) => env.builtin(*b).map(Cow::Owned),
            Expr::List(items) => {
                Some(Cow::Owned(Value::List(items.iter().filter_map(|e| e.value(env).map(Cow::into_owned)).collect())))
            }
            Expr::Not(e) => bool(!e.test(env)),
            Expr::And(a, b) => bool(a.test(env) && b.test(env)),
            Expr::Or(a, b) => bool(a.test(env) || b.test(env)),
            Expr::Cmp(a, op, b) => bool(compare(a, *op, b, env)),
            Expr::In(a, list, negated) => bool(is_in(a, list, *negated, env)),
            Expr::Call(f, args) => {
                let mut vals = args.iter().map(|a| a.value(env));
                let first = vals.next().flatten();
                let first = first.as_deref();
                match f {
                    Func::Only => {
                        let v = vals.next().flatten();
                        let v = v.as_deref();
                        bool(count_items(first) > 0 && all_items(first, |i| equal(Some(i), v)))
                    }
                    Func::Contains => {
                        let v = vals.next().flatten();
                        bool(any_item(first, |i| equal(Some(i), v.as_deref())))
                    }
                    Func::Len => Some(Cow::Owned(Value::Int(count_items(first) as i64))),
                    Func::IsSet => bool(first.is_some_and(|v| v.truthy() || matches!(v, Value::Bool(_)))),
                    Func::ProvinceOf => env.province_of(first?.as_key()?).map(|o| Cow::Owned(Value::Org(o))),
                    Func::LevelOf => env.level_of(first?.as_key()?).map(|l| Cow::Owned(Value::Key(l.into()))),
                    Func::AllAtLevel => {
                        let level = vals.next().flatten();
                        let level = level.as_deref().and_then(Value::as_key);
                        bool(all_items(first, |o| {
                            o.as_key().and_then(|o| env.level_of(o)).is_some_and(|l| Some(l) == level)
                        }))
                    }
                    Func::Unknown(_) => None,
                }
            }
        }
    }

    /// Evaluates as a condition: no value is false.
    pub fn test(&self, env: &dyn Env) -> bool {
        // The logical nodes answer directly, without a value to build and drop.
        match self {
            Expr::Not(e) => !e.test(env),
            Expr::And(a, b) => a.test(env) && b.test(env),
            Expr::Or(a, b) => a.test(env) || b.test(env),
            Expr::Cmp(a, op, b) => compare(a, *op, b, env),
            Expr::In(a, list, negated) => is_in(a, list, *negated, env),
            _ => self.value(env).is_some_and(|v| v.truthy()),
        }
    }
}

fn compare(a: &Expr, op: CmpOp, b: &Expr, env: &dyn Env) -> bool {
    let (a, b) = (a.value(env), b.value(env));
    let (a, b) = (a.as_deref(), b.as_deref());
    match op {
        CmpOp::Eq => equal(a, b),
        CmpOp::Ne => !equal(a, b),
        _ => match a.and_then(|a| order(a, b?)) {
            Some(o) => match op {
                CmpOp::Lt => o.is_lt(),
                CmpOp::Le => o.is_le(),
                CmpOp::Gt => o.is_gt(),
                _ => o.is_ge(),
            },
            None => false,
        },
    }
}

fn is_in(a: &Expr, list: &Expr, negated: bool, env: &dyn Env) -> bool {
    let a = a.value(env);
    let a = a.as_deref();
    let found = match list {
        // A literal list is tested item by item, without building it.
        Expr::List(items) => items.iter().any(|i| equal(a, i.value(env).as_deref())),
        other => any_item(other.value(env).as_deref(), |i| equal(a, Some(i))),
    };
    found != negated
}

/// A value as a list of items (no value: none; a single value: itself), tested item by item.
fn any_item(v: Option<&Value>, mut f: impl FnMut(&Value) -> bool) -> bool {
    match v {
        None => false,
        Some(Value::List(l)) => l.iter().any(f),
        Some(Value::Targets(t)) => t.iter().any(|t| f(&Value::Org(t.org.clone()))),
        Some(v) => f(v),
    }
}

fn all_items(v: Option<&Value>, mut f: impl FnMut(&Value) -> bool) -> bool {
    match v {
        None => true,
        Some(Value::List(l)) => l.iter().all(f),
        Some(Value::Targets(t)) => t.iter().all(|t| f(&Value::Org(t.org.clone()))),
        Some(v) => f(v),
    }
}

fn count_items(v: Option<&Value>) -> usize {
    match v {
        None => 0,
        Some(Value::List(l)) => l.len(),
        Some(Value::Targets(t)) => t.len(),
        Some(_) => 1,
    }
}

fn equal(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => match (a.as_key(), b.as_key()) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
        _ => false,
    }
}

fn order(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
        (Value::Time(a), Value::Time(b)) => Some(a.cmp(b)),
        (Value::Text(_) | Value::Key(_), Value::Text(_) | Value::Key(_)) => Some(a.as_key()?.cmp(b.as_key()?)),
        _ => None,
    }
}

/// What a condition can read.
pub trait Env {
    /// A field's value.
    fn get(&self, name: &str) -> Option<Value>;
    /// A field's value, borrowed where the environment holds it.
    fn get_ref(&self, name: &str) -> Option<Cow<'_, Value>> {
        self.get(name).map(Cow::Owned)
    }
    fn builtin(&self, b: Builtin) -> Option<Value>;
    fn province_of(&self, org: &str) -> Option<crate::ids::OrgUnitId>;
    fn level_of(&self, org: &str) -> Option<&'static str>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    struct Vars(BTreeMap<&'static str, Value>);
    impl Env for Vars {
        fn get(&self, name: &str) -> Option<Value> {
            self.0.get(name).cloned()
        }
        fn builtin(&self, b: Builtin) -> Option<Value> {
            (b == Builtin::Span).then(|| Value::text("city"))
        }
        fn province_of(&self, org: &str) -> Option<crate::ids::OrgUnitId> {
            org.split('.').next().map(crate::ids::OrgUnitId::new)
        }
        fn level_of(&self, org: &str) -> Option<&'static str> {
            Some(if org.contains('.') { "city" } else { "province" })
        }
    }

    fn env() -> Vars {
        let mut m = BTreeMap::new();
        m.insert("is_fault", Value::Bool(true));
        m.insert("source", Value::text("miit_appeal"));
        m.insert("n", Value::Int(3));
        m.insert("targets", Value::List([Value::text("sd"), Value::text("sd")].into()));
        Vars(m)
    }

    fn t(src: &str) -> bool {
        Expr::parse(src).unwrap().test(&env())
    }

    #[test]
    fn conditions_evaluate_as_written() {
        assert!(t("is_fault"));
        assert!(!t("!is_fault"));
        assert!(t("source in ['miit_appeal', 'media', 'leadership']"));
        assert!(!t("source not in ['miit_appeal', 'media']"));
        assert!(t("is_fault && (n > 2 || missing)"));
        assert!(!t("missing"));
        assert!(t("missing == null && !is_set(missing)"));
        assert!(t("only(targets, 'sd') && len(targets) == 2 && contains(targets, 'sd')"));
        assert!(!t("only(targets, 'gd')"));
        assert!(t("province_of('sd.jn') == 'sd' && level_of('sd.jn') == 'city'"));
        assert!(t("all_at_level(targets, 'province') && !all_at_level(['sd', 'sd.jn'], 'province')"));
        assert!(t("n >= 3 && n <= 3 && n != 4"));
        assert!(t("span == 'city'"), "built-ins are resolved at parse time");
        assert!(!t("missing > 1"), "comparisons with no value are false");
    }

    #[test]
    fn parse_errors_point_at_the_offending_character() {
        let e = Expr::parse("is_fault && ").unwrap_err();
        assert_eq!(e.offset, 12);
        let e = Expr::parse("a = b").unwrap_err();
        assert_eq!(e.offset, 2);
        assert!(Expr::parse("'open").unwrap_err().message.contains("unterminated"));
        assert!(Expr::parse("a b").unwrap_err().message.contains("unexpected text"));
        assert!(Expr::parse("x not y").unwrap_err().message.contains("expected 'in'"));
    }

    #[test]
    fn vars_and_calls_are_listed_for_validation() {
        let e = Expr::parse("only(a, b) && !c || d in [e, 'x']").unwrap();
        let mut v = Vec::new();
        e.vars(&mut v);
        assert_eq!(v, ["a", "b", "c", "d", "e"]);
        let mut c = Vec::new();
        e.calls(&mut c);
        assert_eq!(c, [("only".to_string(), 2)]);
    }
}
