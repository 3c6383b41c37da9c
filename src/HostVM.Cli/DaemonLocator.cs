using System.Text.Json;
using HostVM.Cli.Api;
using HostVM.Host.Security;
using HostVM.Vmm;

namespace HostVM.Cli;

/// <summary>
/// Finds the daemon: <c>--host</c>, else <c>HOSTVM_HOST</c>, else <c>host</c> in ~/.config/hostvm/cli.json,
/// else the daemon's Unix socket if it exists (where <c>hostvm serve</c> puts it), else https://127.0.0.1:8006;
/// and the token and certificate fingerprint the same way (<c>--token</c>, <c>HOSTVM_TOKEN</c>, <c>token</c>;
/// <c>--fingerprint</c>, <c>HOSTVM_FINGERPRINT</c>, <c>fingerprint</c>).
/// </summary>
public static class DaemonLocator
{
    public const string DefaultHttp = "https://127.0.0.1:8006";
    public const string Variable = "HOSTVM_HOST";
    public const string TokenVariable = "HOSTVM_TOKEN";
    public const string FingerprintVariable = "HOSTVM_FINGERPRINT";

    public static DaemonAddress Locate(string? hostOption, CliEnvironment environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        return Locate(hostOption, environment, ReadConfig(ConfigFile(environment)), "--host");
    }

    /// <summary>
    /// The daemon's address, token and fingerprint, each from its option, else its variable, else cli.json. The
    /// file's token and fingerprint are taken only when the daemon is the file's host (or the file names none):
    /// `--host elsewhere` must not send the token, nor pin the certificate, of the daemon one logged in to.
    /// </summary>
    /// <param name="hostOption">--host (or login's URL).</param>
    /// <param name="tokenOption">--token.</param>
    /// <param name="fingerprintOption">--fingerprint.</param>
    /// <param name="environment">The variables and the home directory.</param>
    /// <param name="readConfigFile">False for `hostvm login`, which writes the file rather than reads it.</param>
    /// <param name="hostSource">What to call <paramref name="hostOption"/> in messages.</param>
    public static DaemonConnection Resolve(
        string? hostOption, string? tokenOption, string? fingerprintOption, CliEnvironment environment, bool readConfigFile = true, string hostSource = "--host")
    {
        ArgumentNullException.ThrowIfNull(environment);
        string file = ConfigFile(environment);
        var config = readConfigFile ? ReadConfig(file) : null;
        var address = Locate(hostOption, environment, config, hostSource);
        bool fileIsForThisHost = config?.Host is not { Length: > 0 } host || SameDaemon(Parse(host, file), address);
        var fromFile = fileIsForThisHost ? config : null;

        var (token, tokenSource) = Pick("--token", tokenOption, TokenVariable, environment, file, fromFile?.Token);
        if (token is not null && !token.All(c => c is > ' ' and < (char)0x7f))
        {
            throw new UsageException($"{tokenSource}: the token has spaces or characters a header cannot carry; give it as it was issued (hvt_...).");
        }

        var (fingerprint, fingerprintSource) = Pick("--fingerprint", fingerprintOption, FingerprintVariable, environment, file, fromFile?.Fingerprint);
        string? pin = null;
        if (fingerprint is not null)
        {
            pin = CertificateFingerprint.Normalize(fingerprint)
                ?? throw new UsageException($"{fingerprintSource} {fingerprint}: not a SHA-256 fingerprint; write the 64 hex digits `hostvm serve` printed (colons optional).");
        }

        return new DaemonConnection(address, token, pin);
    }

    private static DaemonAddress Locate(string? hostOption, CliEnvironment environment, CliConfig? config, string hostSource)
    {
        var address = Find(hostOption, environment, config, hostSource);
        if (address.SocketPath is { } socket)
        {
            RefuseUntrustedSocket(socket, address.Source);
        }

        return address;
    }

    /// <summary>
    /// The CLI sends its token, and uploads images, to whatever listens on the socket. A socket (or the directory
    /// it is in) of another user than this one or root may be that user's, put where the daemon's would be (the
    /// default /tmp/hostvm-USER is a name anyone can take first): refuse it rather than talk to it.
    /// </summary>
    private static void RefuseUntrustedSocket(string socket, string source)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        string directory = Path.GetDirectoryName(Path.GetFullPath(socket)) ?? "/";
        foreach (var (path, what) in new[] { (directory, "the directory of the daemon's socket"), (socket, "the daemon's socket") })
        {
            UnixFileStatus? status;
            try
            {
                status = OwnerOnly.Status(path);
            }
            catch (IOException)
            {
                continue; // cannot be examined: connecting will say why
            }

            if (status is { Kind: UnixFileKind.SymbolicLink } && path == directory)
            {
                throw new UsageException($"{what} {path} ({source}) is a symbolic link, which another user may have made to pose as the daemon; not connecting. Remove it, or give --host.");
            }

            if (status is { } s && !OwnerOnly.IsTrustedOwner(s.Owner))
            {
                throw new UsageException($"{what} {path} ({source}) belongs to uid {s.Owner}, neither you nor root: another user may be posing as the daemon to take your token; not connecting. Remove it, or give --host.");
            }
        }
    }

    private static DaemonAddress Find(string? hostOption, CliEnvironment environment, CliConfig? config, string hostSource)
    {
        if (hostOption is { Length: > 0 })
        {
            return Parse(hostOption, hostSource);
        }

        if (environment.Variable(Variable) is { Length: > 0 } fromEnvironment)
        {
            return Parse(fromEnvironment, Variable);
        }

        if (config?.Host is { Length: > 0 } fromConfig)
        {
            return Parse(fromConfig, ConfigFile(environment));
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

    private static bool SameDaemon(DaemonAddress a, DaemonAddress b) => a.BaseUri == b.BaseUri && a.SocketPath == b.SocketPath;

    /// <summary>The first value given, and where it came from (for messages).</summary>
    private static (string? Value, string Source) Pick(string optionName, string? option, string variableName, CliEnvironment environment, string file, string? fromFile) =>
        option is { Length: > 0 } ? (option, optionName)
        : environment.Variable(variableName) is { Length: > 0 } variable ? (variable, variableName)
        : fromFile is { Length: > 0 } ? (fromFile, file)
        : (null, string.Empty);

    /// <summary>cli.json, or null if there is none.</summary>
    public static CliConfig? ReadConfig(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize(File.ReadAllText(path), ApiJsonContext.Default.CliConfig);
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
