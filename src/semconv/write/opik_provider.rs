//! Provider names: every dialect's spelling → Opik's canonical names, so
//! that Opik's server-side cost lookup finds the model.

/// Maps a provider as an instrumentation wrote it onto Opik's name.
/// `server_address` disambiguates Google's backends. Unknown providers are
/// lower-cased and kept.
pub fn to_opik(raw: &str, server_address: Option<&str>) -> String {
    let lower = raw.trim().to_ascii_lowercase();
    // Vercel writes "openai.chat", "anthropic.messages": the part before the dot.
    let base = match lower.split_once('.') {
        Some((head, _)) if !matches!(head, "aws" | "azure" | "az" | "gcp" | "ibm") => head,
        _ => lower.as_str(),
    };
    let name = match base {
        "openai" | "openai.chat" | "openai.responses" => "openai",
        "anthropic" => "anthropic",
        "aws.bedrock" | "bedrock" | "amazon-bedrock" | "amazon_bedrock" | "aws" => "bedrock",
        // Not `azure.ai.inference`: it fronts non-OpenAI models too, so the
        // model id decides (see `resolve`).
        "azure.ai.openai" | "az.ai.openai" | "azure_openai" | "azure-openai" | "azure" => "azure",
        "gcp.vertex_ai" | "vertex_ai" | "vertexai" | "google_vertexai" | "vertex"
        | "google-vertex" => "google_vertexai",
        "gcp.gemini"
        | "gemini"
        | "google_ai"
        | "google-ai"
        | "google.generativeai"
        | "google-generative-ai" => "google_ai",
        "gcp.gen_ai" | "google" => {
            if server_address.is_some_and(|a| a.contains("aiplatform.googleapis.com")) {
                "google_vertexai"
            } else {
                "google_ai"
            }
        }
        "mistral_ai" | "mistralai" | "mistral" => "mistral",
        "x_ai" | "xai" | "x-ai" => "xai",
        "groq" => "groq",
        "deepseek" => "deepseek",
        "cohere" | "cohere_chat" => "cohere",
        "perplexity" => "perplexity",
        "ibm.watsonx.ai" | "watsonx" => "watsonx",
        "moonshot_ai" | "moonshotai" | "moonshot" => "moonshot",
        "ollama" => "ollama",
        "openrouter" => "openrouter",
        _ => return lower,
    };
    name.to_string()
}

/// The provider names Opik prices models under.
const PRICED: &[&str] = &[
    "openai",
    "anthropic",
    "anthropic_vertexai",
    "bedrock",
    "azure",
    "google_vertexai",
    "google_ai",
    "mistral",
    "xai",
    "groq",
    "deepseek",
    "cohere",
    "perplexity",
    "watsonx",
    "moonshot",
    "ollama",
    "openrouter",
];

/// Whether Opik prices models under this (canonical) provider name.
pub fn is_priced(provider: &str) -> bool {
    PRICED.contains(&provider)
}

/// The provider and model Opik can price: the stated provider when Opik
/// knows it; else (a framework name such as `strands-agents` or
/// `gcp.vertex.agent`, or nothing) the one the server address or the model
/// id implies. A LiteLLM-style `provider/` model prefix names the backend
/// and wins (ADK states `gcp.gemini` for a LiteLLM model); it is stripped
/// from the model, except for OpenRouter, whose model ids keep it (Azure and
/// Bedrock keep their own name). Claude on Vertex is
/// `anthropic_vertexai`.
pub fn resolve(
    raw: Option<&str>,
    model: Option<&str>,
    server_address: Option<&str>,
) -> (Option<String>, Option<String>) {
    let stated = raw.map(|r| to_opik(r, server_address));
    let prefixed = model.and_then(|m| {
        let (head, rest) = m.split_once('/')?;
        let p = to_opik(head, server_address);
        (PRICED.contains(&p.as_str()) && !rest.is_empty()).then(|| (p, rest.to_string()))
    });
    let priced = stated.filter(|p| PRICED.contains(&p.as_str()));
    let (provider, model) = match (priced, prefixed) {
        (Some(p), _) if p == "openrouter" => (Some(p), model.map(str::to_string)),
        (Some(p), Some((_, rest))) if p == "azure" || p == "bedrock" => (Some(p), Some(rest)),
        // The prefix names the backend (ADK says `gcp.gemini` for a LiteLLM model too).
        (_, Some((q, rest))) => (Some(q), Some(rest)),
        (Some(p), None) => (Some(p), model.map(str::to_string)),
        (None, None) => {
            let inferred = server_address
                .and_then(from_host)
                .or_else(|| model.and_then(from_model));
            let fallback = raw.map(|r| to_opik(r, server_address));
            (
                inferred.map(str::to_string).or(fallback),
                model.map(str::to_string),
            )
        }
    };
    let provider = match (provider.as_deref(), model.as_deref()) {
        (Some("google_vertexai"), Some(m)) if m.starts_with("claude") => {
            Some("anthropic_vertexai".to_string())
        }
        _ => provider,
    };
    (provider, model)
}

/// The provider a server address belongs to.
fn from_host(host: &str) -> Option<&'static str> {
    let h = host.trim().to_ascii_lowercase();
    let ends = |suffix: &str| h == suffix || h.ends_with(&format!(".{suffix}"));
    Some(if ends("api.openai.com") {
        "openai"
    } else if ends("api.anthropic.com") {
        "anthropic"
    } else if ends("generativelanguage.googleapis.com") {
        "google_ai"
    } else if h.contains("aiplatform.googleapis.com") {
        "google_vertexai"
    } else if h.starts_with("bedrock-runtime.") || h.starts_with("bedrock.") {
        "bedrock"
    } else if ends("openai.azure.com") {
        "azure"
    } else if ends("api.deepseek.com") {
        "deepseek"
    } else if ends("api.x.ai") {
        "xai"
    } else if ends("api.mistral.ai") {
        "mistral"
    } else if ends("api.groq.com") {
        "groq"
    } else if ends("api.cohere.com") || ends("api.cohere.ai") {
        "cohere"
    } else if ends("api.perplexity.ai") {
        "perplexity"
    } else if ends("openrouter.ai") {
        "openrouter"
    } else {
        return None;
    })
}

/// The provider a model id belongs to, by its family name.
fn from_model(model: &str) -> Option<&'static str> {
    let m = model.trim().to_ascii_lowercase();
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| m.starts_with(p));
    // Bedrock model ids: `anthropic.claude-…`, `us.amazon.nova-…`, `meta.llama…`.
    let bedrock_vendor = [
        "anthropic.",
        "amazon.",
        "meta.",
        "cohere.",
        "ai21.",
        "mistral.",
    ];
    let regional = m.split_once('.').map_or("", |(_, rest)| rest);
    if starts(&bedrock_vendor) || bedrock_vendor.iter().any(|v| regional.starts_with(v)) {
        return Some("bedrock");
    }
    Some(
        if starts(&[
            "gpt-",
            "chatgpt-",
            "o1",
            "o3",
            "o4",
            "text-embedding-",
            "davinci",
            "babbage",
        ]) {
            "openai"
        } else if starts(&["claude"]) {
            "anthropic"
        } else if starts(&["gemini", "models/gemini"]) {
            "google_ai"
        } else if starts(&["mistral", "ministral", "codestral", "pixtral", "magistral"]) {
            "mistral"
        } else if starts(&["grok"]) {
            "xai"
        } else if starts(&["deepseek"]) {
            "deepseek"
        } else if starts(&["command"]) {
            "cohere"
        } else {
            return None;
        },
    )
}

#[cfg(test)]
mod tests {
    use super::{resolve, to_opik};

    fn r(raw: Option<&str>, model: &str, host: Option<&str>) -> (String, String) {
        let (p, m) = resolve(raw, Some(model), host);
        (p.unwrap_or_default(), m.unwrap_or_default())
    }

    #[test]
    fn framework_names_give_way_to_what_opik_can_price() {
        let cases = [
            (
                Some("strands-agents"),
                "gpt-4o-mini",
                None,
                "openai",
                "gpt-4o-mini",
            ),
            (
                Some("gcp.vertex.agent"),
                "gemini-2.5-flash",
                None,
                "google_ai",
                "gemini-2.5-flash",
            ),
            (
                None,
                "claude-sonnet-4-5",
                None,
                "anthropic",
                "claude-sonnet-4-5",
            ),
            (
                Some("langchain"),
                "x",
                Some("api.deepseek.com"),
                "deepseek",
                "x",
            ),
            (
                Some("gcp.gemini"),
                "openai/gpt-4o-mini",
                None,
                "openai",
                "gpt-4o-mini",
            ),
            (
                None,
                "anthropic/claude-3-5-haiku",
                None,
                "anthropic",
                "claude-3-5-haiku",
            ),
            (Some("openai"), "openai/gpt-4o", None, "openai", "gpt-4o"),
            (
                Some("openrouter"),
                "openai/gpt-4o",
                None,
                "openrouter",
                "openai/gpt-4o",
            ),
            (
                Some("vertex_ai"),
                "claude-3-5-sonnet@20240620",
                None,
                "anthropic_vertexai",
                "claude-3-5-sonnet@20240620",
            ),
            (
                None,
                "us.anthropic.claude-3-haiku-20240307-v1:0",
                None,
                "bedrock",
                "us.anthropic.claude-3-haiku-20240307-v1:0",
            ),
            (
                None,
                "m",
                Some("bedrock-runtime.us-east-1.amazonaws.com"),
                "bedrock",
                "m",
            ),
            (
                Some("azure.ai.inference"),
                "mistral-large",
                None,
                "mistral",
                "mistral-large",
            ),
            (Some("mycorp"), "in-house-7b", None, "mycorp", "in-house-7b"),
            (
                Some("anthropic"),
                "claude-x",
                Some("api.openai.com"),
                "anthropic",
                "claude-x",
            ),
        ];
        for (raw, model, host, provider, stripped) in cases {
            assert_eq!(
                r(raw, model, host),
                (provider.to_string(), stripped.to_string()),
                "{raw:?} {model}"
            );
        }
        assert_eq!(resolve(None, None, None), (None, None));
    }

    #[test]
    fn every_spelling_maps_to_opiks_name() {
        let cases = [
            ("openai", "openai"),
            ("OpenAI", "openai"),
            ("Anthropic", "anthropic"),
            ("aws.bedrock", "bedrock"),
            ("az.ai.openai", "azure"),
            ("azure.ai.inference", "azure.ai.inference"),
            ("gcp.vertex_ai", "google_vertexai"),
            ("vertex_ai", "google_vertexai"),
            ("gcp.gemini", "google_ai"),
            ("gemini", "google_ai"),
            ("mistral_ai", "mistral"),
            ("x_ai", "xai"),
            ("xai", "xai"),
            ("moonshotai", "moonshot"),
            ("openai.chat", "openai"),
            ("anthropic.messages", "anthropic"),
            ("SomethingNew", "somethingnew"),
        ];
        for (raw, want) in cases {
            assert_eq!(to_opik(raw, None), want, "{raw}");
        }
        assert_eq!(
            to_opik("gcp.gen_ai", Some("us-central1-aiplatform.googleapis.com")),
            "google_vertexai"
        );
        assert_eq!(
            to_opik("gcp.gen_ai", Some("generativelanguage.googleapis.com")),
            "google_ai"
        );
    }
}
