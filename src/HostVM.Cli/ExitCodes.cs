namespace HostVM.Cli;

/// <summary>The exit codes of the daemon commands (vm, image, network, host, events), as README.md and `hostvm --help` list them.</summary>
public static class ExitCodes
{
    public const int Ok = 0;

    /// <summary>The daemon refused the request (a 4xx other than 404 and 409: a bad field, a body too large).</summary>
    public const int Refused = 1;

    /// <summary>The command line is wrong (unknown option, a value that does not parse, a missing file to upload).</summary>
    public const int BadCommandLine = 2;

    /// <summary>No such VM, image or network (404).</summary>
    public const int NotFound = 3;

    /// <summary>The state forbids it, the name is taken, the VM does not fit (409).</summary>
    public const int Conflict = 4;

    /// <summary>No connection to the daemon (refused, no socket, timed out).</summary>
    public const int Unreachable = 5;

    /// <summary>The daemon failed (5xx) or answered something this client cannot read.</summary>
    public const int DaemonError = 6;

    /// <summary>The daemon's TLS certificate is not trusted: not the pinned fingerprint, or (with no pin) not verifiable by the system.</summary>
    public const int Untrusted = 7;

    public const string Help =
        "Exit codes of the daemon commands: 0 ok, 1 the daemon refused the request, 2 bad command line, 3 not found, " +
        "4 conflict (wrong state, name taken, does not fit), 5 cannot reach the daemon, 6 daemon error, " +
        "7 the daemon's certificate is not trusted (not the pinned fingerprint, or unverifiable without one).";

    /// <summary>The exit code for an HTTP error status from the daemon.</summary>
    public static int ForStatus(int status) => status switch
    {
        404 => NotFound,
        409 => Conflict,
        >= 400 and < 500 => Refused,
        _ => DaemonError,
    };
}
