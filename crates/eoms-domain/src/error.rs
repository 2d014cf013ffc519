//! Why the engine refuses an action. Every refusal has a stable code (for the API and tests) and a
//! message in both console languages that names what is wrong: the state, the task, the field and
//! the branch that requires it.

use crate::definition::I18n;
use crate::value::InvalidValue;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DomainError {
    #[error("the ticket is {status} and takes no more actions")]
    TicketEnded { status: &'static str },
    #[error("unknown action '{action}'")]
    UnknownAction { action: String },
    #[error("action '{action}' is not available at step '{step}'")]
    ActionNotAtStep { action: String, step: String },
    #[error("action '{action}' needs a task")]
    TaskRequired { action: String },
    #[error("task {task} is not open on this ticket")]
    NoSuchTask { task: u32 },
    #[error("user '{user}' may not take action '{action}' here")]
    NotPermitted { user: String, action: String },
    #[error("action '{action}' needs the task to be {needed}, but it is {actual}")]
    WrongTaskState { action: String, needed: &'static str, actual: &'static str },
    #[error("the ticket is suspended; resume it first")]
    Suspended,
    #[error("the ticket is not suspended")]
    NotSuspended,
    #[error("the ticket is already suspended")]
    AlreadySuspended,
    #[error("'{field}' is not a field of action '{action}'")]
    UnexpectedField { field: String, action: String },
    #[error("field '{field}' is invalid: {problem}")]
    InvalidField { field: String, problem: String },
    #[error("field '{field}' is required{}", branch.as_ref().map(|b| format!(" when {b}")).unwrap_or_default())]
    MissingField { field: String, branch: Option<String> },
    #[error("{}", message.en)]
    Refused { code: String, message: I18n },
    #[error("unknown org unit '{org}'")]
    UnknownOrg { org: String },
    #[error("unknown or inactive user '{user}'")]
    UnknownUser { user: String },
    #[error("target {role}@{org} is not allowed: {why}")]
    TargetNotAllowed { role: String, org: String, why: &'static str },
    #[error("no handling group of role '{role}' matches org unit '{org}', and the role has no default group")]
    NoHandlerGroup { role: String, org: String },
    #[error("the process definition is inconsistent: {detail}")]
    Definition { detail: String },
}

impl DomainError {
    /// The stable code the API and the console key on.
    pub fn code(&self) -> &str {
        match self {
            DomainError::TicketEnded { .. } => "ticket_ended",
            DomainError::UnknownAction { .. } => "unknown_action",
            DomainError::ActionNotAtStep { .. } => "action_not_at_step",
            DomainError::TaskRequired { .. } => "task_required",
            DomainError::NoSuchTask { .. } => "no_such_task",
            DomainError::NotPermitted { .. } => "not_permitted",
            DomainError::WrongTaskState { .. } => "wrong_task_state",
            DomainError::Suspended => "ticket_suspended",
            DomainError::NotSuspended => "not_suspended",
            DomainError::AlreadySuspended => "already_suspended",
            DomainError::UnexpectedField { .. } => "unexpected_field",
            DomainError::InvalidField { .. } => "invalid_field",
            DomainError::MissingField { .. } => "missing_field",
            DomainError::Refused { code, .. } => code,
            DomainError::UnknownOrg { .. } => "unknown_org",
            DomainError::UnknownUser { .. } => "unknown_user",
            DomainError::TargetNotAllowed { .. } => "target_not_allowed",
            DomainError::NoHandlerGroup { .. } => "no_handler_group",
            DomainError::Definition { .. } => "definition_error",
        }
    }

    /// The message in `lang`. English is the `Display` text.
    pub fn message(&self, lang: Lang) -> String {
        if lang == Lang::En {
            return self.to_string();
        }
        match self {
            DomainError::TicketEnded { status } => format!("工单已{}，不能再处理", status_zh(status)),
            DomainError::UnknownAction { action } => format!("未知操作“{action}”"),
            DomainError::ActionNotAtStep { action, step } => format!("环节“{step}”不能执行操作“{action}”"),
            DomainError::TaskRequired { action } => format!("操作“{action}”需要指定待办任务"),
            DomainError::NoSuchTask { task } => format!("任务 #{task} 不是本工单的在办任务"),
            DomainError::NotPermitted { user, action } => {
                format!("用户“{user}”无权在此执行操作“{action}”（不是您的待办）")
            }
            DomainError::WrongTaskState { action, needed, actual } => {
                format!("操作“{action}”要求任务为{}，当前为{}", state_zh(needed), state_zh(actual))
            }
            DomainError::Suspended => "工单已挂起，请先解挂".into(),
            DomainError::NotSuspended => "工单未挂起".into(),
            DomainError::AlreadySuspended => "工单已处于挂起状态".into(),
            DomainError::UnexpectedField { field, action } => format!("“{field}”不是操作“{action}”的表单字段"),
            DomainError::InvalidField { field, problem } => format!("字段“{field}”填写有误：{}", problem_zh(problem)),
            DomainError::MissingField { field, branch } => match branch {
                Some(b) => format!("当 {b} 时，字段“{field}”必填"),
                None => format!("字段“{field}”必填"),
            },
            DomainError::Refused { message, .. } => message.zh.clone(),
            DomainError::UnknownOrg { org } => format!("未知组织“{org}”"),
            DomainError::UnknownUser { user } => format!("用户“{user}”不存在或已停用"),
            DomainError::TargetNotAllowed { role, org, why } => format!("派发对象 {role}@{org} 不允许：{why}"),
            DomainError::NoHandlerGroup { role, org } => {
                format!("组织“{org}”没有匹配的“{role}”处理组，且该角色未配置缺省组")
            }
            DomainError::Definition { detail } => format!("流程定义有误：{detail}"),
        }
    }
}

fn status_zh(s: &str) -> &'static str {
    match s {
        "closed" => "归档",
        "cancelled" => "撤销",
        "voided" => "作废",
        _ => "结束",
    }
}

fn state_zh(s: &str) -> &'static str {
    match s {
        "ready" => "待接单",
        "claimed" => "已接单",
        _ => "任意状态",
    }
}

/// A problem described by [`describe_invalid`] (or the engine), in Chinese.
fn problem_zh(en: &str) -> String {
    let thing = |w: &str| match w {
        "text" => "文本".to_string(),
        "yes/no" => "“是”或“否”".to_string(),
        "a whole number" => "整数".to_string(),
        "a date and time (yyyy-MM-dd HH:mm:ss)" => "日期时间（yyyy-MM-dd HH:mm:ss）".to_string(),
        "an 11-digit subscriber number" => "11 位用户号码".to_string(),
        "an org unit code" => "组织编码".to_string(),
        "a user name" => "用户名".to_string(),
        "a list of user names" => "用户名列表".to_string(),
        "a list of org unit codes" => "组织编码列表".to_string(),
        "a list of codes" => "编码列表".to_string(),
        "a list of {role, org, kind} targets" => "派发对象列表（角色、单位、主办/协办）".to_string(),
        other => other.to_string(),
    };
    if let Some(w) = en.strip_prefix("expected ") {
        return format!("应为{}", thing(w));
    }
    if let Some(n) = en.strip_prefix("longer than ").and_then(|r| r.strip_suffix(" characters")) {
        return format!("超过 {n} 个字符");
    }
    if let Some((a, b)) = en.strip_prefix("must be between ").and_then(|r| r.split_once(" and ")) {
        return format!("须在 {a} 到 {b} 之间");
    }
    if let Some(o) = en.strip_prefix("must be one of ") {
        return format!("须为以下之一：{o}");
    }
    match en {
        "a transfer goes to exactly one group" => "转派只能选择一个处理组".into(),
        other => other.to_string(),
    }
}

/// Describes an invalid value for messages (English; the field name is added by the caller).
pub fn describe_invalid(v: &InvalidValue) -> String {
    match v {
        InvalidValue::Expected(what) => format!("expected {what}"),
        InvalidValue::TooLong(n) => format!("longer than {n} characters"),
        InvalidValue::OutOfRange(a, b) => format!("must be between {a} and {b}"),
        InvalidValue::NotAnOption(o) => format!("must be one of {}", o.join(", ")),
    }
}
