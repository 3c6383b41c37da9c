using System.Text.Json;
using HostVM.Cli.Api;

namespace HostVM.Cli;

/// <summary>
/// Finds the daemon: <c>--host</c>, else <c>HOSTVM_HOST</c>, else <c>host</c> in ~/.config/hostvm/cli.json,
/// else the daemon's Unix socket if it exists (where <c>hostvm serve</c> puts it), else http://127.0.0.1:8006.
/// </summary>
public static class DaemonLocator
{
    public const string DefaultHttp = "http://127.0.0.1:8006";
    public const string Variable = "HOSTVM_HOST";

    public static DaemonAddress Locate(string? hostOption, CliEnvironment environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        if (hostOption is { Length: > 0 })
        {
            return Parse(hostOption, "--host");
        }

        if (environment.Variable(Variable) is { Length: > 0 } fromEnvironment)
        {
            return Parse(fromEnvironment, Variable);
        }

        string config = ConfigFile(environment);
        if (ReadConfig(config) is { Length: > 0 } fromConfig)
        {
            return Parse(fromConfig, config);
        }

        foreach (string socket in DefaultSockets(environment))
        {
            if (File.Exists(socket))
            {
                return Parse(DaemonAddress.UnixPrefix + socket, "the default");
            }
        }

        return Parse(DefaultHttp, "the default");
    }

    /// <summary>$XDG_CONFIG_HOME/hostvm/cli.json, or ~/.config/hostvm/cli.json.</summary>
    public static string ConfigFile(CliEnvironment environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        string root = environment.Variable("XDG_CONFIG_HOME") is { Length: > 0 } xdg ? xdg : Path.Combine(environment.HomeDirectory, ".config");
        return Path.Combine(root, "hostvm", "cli.json");
    }

    /// <summary>Where `hostvm serve` puts its socket by default: in $XDG_RUNTIME_DIR/hostvm, else /run/hostvm as root, else /tmp/hostvm-USER.</summary>
    public static IReadOnlyList<string> DefaultSockets(CliEnvironment environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        var sockets = new List<string>();
        if (environment.Variable("XDG_RUNTIME_DIR") is { Length: > 0 } runtime)
        {
            sockets.Add(Path.Combine(runtime, "hostvm", "hostvm.sock"));
        }

        sockets.Add(environment.IsRoot ? "/run/hostvm/hostvm.sock" : $"/tmp/hostvm-{environment.Variable("USER") ?? Environment.UserName}/hostvm.sock");
        return sockets;
    }

    private static string? ReadConfig(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize(File.ReadAllText(path), ApiJsonContext.Default.CliConfig)?.Host;
        }
        catch (JsonException e)
        {
            throw new UsageException($"{path}: not valid JSON ({e.Message}); write {{\"host\": \"{DefaultHttp}\"}}.");
        }
        catch (IOException e)
        {
            throw new UsageException($"{path}: cannot read it ({e.Message}).");
        }
        catch (UnauthorizedAccessException e)
        {
            throw new UsageException($"{path}: cannot read it ({e.Message}).");
        }
    }

    private static DaemonAddress Parse(string text, string source)
    {
        try
        {
            return DaemonAddress.Parse(text, source);
        }
        catch (FormatException e)
        {
            throw new UsageException(e.Message);
        }
    }
}
