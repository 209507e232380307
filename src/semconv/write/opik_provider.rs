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
        "azure.ai.openai" | "az.ai.openai" | "azure_openai" | "azure-openai" | "azure"
        | "azure.ai.inference" | "az.ai.inference" => "azure",
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

#[cfg(test)]
mod tests {
    use super::to_opik;

    #[test]
    fn every_spelling_maps_to_opiks_name() {
        let cases = [
            ("openai", "openai"),
            ("OpenAI", "openai"),
            ("Anthropic", "anthropic"),
            ("aws.bedrock", "bedrock"),
            ("az.ai.openai", "azure"),
            ("azure.ai.inference", "azure"),
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
