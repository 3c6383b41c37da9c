using System.CommandLine;

namespace HostVM.Cli;

/// <summary>The options every daemon command takes, before or after the command's name: --host, --token, --fingerprint and --output.</summary>
public sealed class GlobalOptions
{
    public GlobalOptions()
    {
        Output.AcceptOnlyFromAmong("table", "json");
    }

    public Option<string?> Host { get; } = new("--host")
    {
        Description = $"The daemon: https://HOST:PORT or unix:PATH (default: ${DaemonLocator.Variable}, then \"host\" in ~/.config/hostvm/cli.json, then the daemon's Unix socket if it exists, then {DaemonLocator.DefaultHttp}).",
        Recursive = true,
    };

    public Option<string?> Token { get; } = new("--token")
    {
        Description = $"The API token (hvt_...) to send (default: ${DaemonLocator.TokenVariable}, then \"token\" in ~/.config/hostvm/cli.json for its host). The Unix socket needs none.",
        Recursive = true,
    };

    public Option<string?> Fingerprint { get; } = new("--fingerprint")
    {
        Description = $"Trust only the daemon certificate with this SHA-256 fingerprint, as `hostvm serve` prints it (default: ${DaemonLocator.FingerprintVariable}, then \"fingerprint\" in ~/.config/hostvm/cli.json for its host; without one the system's CAs decide).",
        Recursive = true,
    };

    public Option<string> Output { get; } = new("--output", "-o")
    {
        Description = "table (for people) or json (the daemon's JSON unchanged, for scripts).",
        DefaultValueFactory = _ => "table",
        Recursive = true,
    };

    public void AddTo(Command root)
    {
        ArgumentNullException.ThrowIfNull(root);
        root.Options.Add(Host);
        root.Options.Add(Token);
        root.Options.Add(Fingerprint);
        root.Options.Add(Output);
    }

    public bool IsJson(ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        return parse.GetValue(Output) == "json";
    }
}
