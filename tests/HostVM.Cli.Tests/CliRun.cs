namespace HostVM.Cli.Tests;

/// <summary>
/// Runs `hostvm ARGS` in-process against a <see cref="FakeDaemon"/>, with captured stdout and stderr,
/// no terminal, and an environment of its own (no HOSTVM_HOST, a home directory with no config file).
/// </summary>
public sealed class CliRun
{
    private CliRun(int exitCode, string output, string errors)
    {
        ExitCode = exitCode;
        Output = output;
        Errors = errors;
    }

    public int ExitCode { get; }

    public string Output { get; }

    public string Errors { get; }

    public static CliRun Start(FakeDaemon? daemon, params string[] args) => Start(daemon, new Dictionary<string, string>(), args);

    public static CliRun Start(FakeDaemon? daemon, IReadOnlyDictionary<string, string> variables, params string[] args)
    {
        var output = new StringWriter();
        var errors = new StringWriter();
        var environment = TestEnvironment(output, errors, variables) with
        {
            Transport = daemon is null ? null : _ => new NonDisposingHandler(daemon),
        };
        int code = Program.Run(args, environment);
        return new CliRun(code, output.ToString(), errors.ToString());
    }

    public static CliEnvironment TestEnvironment(TextWriter output, TextWriter errors, IReadOnlyDictionary<string, string> variables) => new()
    {
        Out = output,
        Error = errors,
        Variable = name => variables.TryGetValue(name, out string? v) ? v : null,
        HomeDirectory = "/nonexistent-home",
        OpenInput = () => Stream.Null,
        OpenOutput = () => Stream.Null,
    };

    /// <summary>The client disposes its handler; the fake's record must outlive the command.</summary>
    private sealed class NonDisposingHandler(FakeDaemon inner) : DelegatingHandler(inner)
    {
        protected override void Dispose(bool disposing)
        {
        }
    }
}
