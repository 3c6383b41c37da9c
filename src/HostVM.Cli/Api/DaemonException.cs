namespace HostVM.Cli.Api;

/// <summary>The daemon answered with an error status; <see cref="Problem"/> is its problem+json, when it sent one.</summary>
public sealed class DaemonException(int status, Problem? problem, string message) : Exception(message)
{
    public int Status { get; } = status;

    public Problem? Problem { get; } = problem;
}
