namespace HostVM.Cli.Api;

/// <summary>
/// ~/.config/hostvm/cli.json: <c>{"host": "https://box:8006", "token": "hvt_…", "fingerprint": "AB:CD:…"}</c>
/// (what <c>hostvm login</c> writes). The token and fingerprint belong to that host: they are not sent to another one.
/// </summary>
public sealed record CliConfig
{
    public string? Host { get; init; }

    public string? Token { get; init; }

    public string? Fingerprint { get; init; }
}
