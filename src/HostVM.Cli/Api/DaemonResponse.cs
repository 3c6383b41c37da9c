namespace HostVM.Cli.Api;

/// <summary>A daemon answer: the object read from it, and its JSON exactly as sent (for <c>--output json</c>).</summary>
public sealed record DaemonResponse<T>(T Value, string Json);
