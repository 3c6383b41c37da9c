namespace HostVM.Cli.Api;

/// <summary>~/.config/hostvm/cli.json: <c>{"host": "http://127.0.0.1:8006"}</c>.</summary>
public sealed record CliConfig
{
    public string? Host { get; init; }
}
