using HostVM.Cli.Api;
using Microsoft.Win32.SafeHandles;

namespace HostVM.Cli;

/// <summary>
/// What the daemon commands take from the process they run in: the standard streams and whether they are
/// terminals, environment variables, the home directory, and how to reach the daemon. Tests build one with
/// string writers and a fake transport; <see cref="FromProcess"/> is the real one.
/// </summary>
public sealed record CliEnvironment
{
    public required TextWriter Out { get; init; }

    public required TextWriter Error { get; init; }

    public bool OutputIsTerminal { get; init; }

    public bool ErrorIsTerminal { get; init; }

    public bool InputIsTerminal { get; init; }

    public required Func<string, string?> Variable { get; init; }

    public required string HomeDirectory { get; init; }

    public bool IsRoot { get; init; }

    /// <summary>Reads a line a person types (a confirmation); null at the end of input.</summary>
    public Func<string?> ReadLine { get; init; } = Console.ReadLine;

    /// <summary>The HTTP transport to the daemon; null: a real connection.</summary>
    public Func<DaemonAddress, HttpMessageHandler>? Transport { get; init; }

    /// <summary>Standard input as bytes (the console's keyboard).</summary>
    public required Func<Stream> OpenInput { get; init; }

    /// <summary>Standard output as bytes (the console's screen).</summary>
    public required Func<Stream> OpenOutput { get; init; }

    public static CliEnvironment FromProcess() => new()
    {
        Out = Console.Out,
        Error = Console.Error,
        OutputIsTerminal = !Console.IsOutputRedirected,
        ErrorIsTerminal = !Console.IsErrorRedirected,
        InputIsTerminal = !Console.IsInputRedirected,
        Variable = Environment.GetEnvironmentVariable,
        HomeDirectory = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile),
        IsRoot = Environment.IsPrivilegedProcess,
        // fd 0 as a plain file: Console.OpenStandardInput() on a terminal goes through .NET's line
        // editor (it echoes and buffers until Enter), which a raw console must bypass.
        OpenInput = () => new FileStream(new SafeFileHandle(0, ownsHandle: false), FileAccess.Read, 1),
        OpenOutput = Console.OpenStandardOutput,
    };

    public DaemonClient Connect(DaemonConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        return new(connection, Transport?.Invoke(connection.Address));
    }
}
