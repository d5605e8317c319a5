"""Everything that talks to model servers: sampling params, prompt formats, the streaming client."""
