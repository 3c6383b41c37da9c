using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace HostVM.Networking.Switch;

/// <summary>
/// Where a switch lives. A switch is nothing but a directory: each port binds one socket file in it, and
/// sending to "the switch" means sending to the other files. So there is no daemon to start or to crash,
/// and a switch exists as long as a port uses it.
/// </summary>
public static partial class SwitchLocation
{
    /// <summary>Overrides the runtime directory (the parent of <c>switches/</c>).</summary>
    public const string RuntimeDirectoryVariable = "HOSTVM_RUNTIME_DIR";

    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>
    /// The runtime directory: <paramref name="runtimeDirectory"/> if given, else $HOSTVM_RUNTIME_DIR, else
    /// $XDG_RUNTIME_DIR/hostvm, else /tmp/hostvm-UID.
    /// </summary>
    public static string RuntimeDirectory(string? runtimeDirectory = null)
    {
        if (!string.IsNullOrEmpty(runtimeDirectory))
        {
            return Path.GetFullPath(runtimeDirectory);
        }

        string? configured = Environment.GetEnvironmentVariable(RuntimeDirectoryVariable);
        if (!string.IsNullOrEmpty(configured))
        {
            return Path.GetFullPath(configured);
        }

        string? xdg = Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR");
        if (!string.IsNullOrEmpty(xdg))
        {
            return Path.Combine(xdg, "hostvm");
        }

        // Per user, so one user's VMs never see (or delete) another user's sockets.
        return Path.Combine(Path.GetTempPath(), $"hostvm-{GetEffectiveUserId()}");
    }

    /// <summary>The directory of switch <paramref name="switchName"/> (not created).</summary>
    /// <exception cref="ArgumentException">The name is not 1 to 64 of A-Z a-z 0-9 _ . -.</exception>
    public static string SwitchDirectory(string switchName, string? runtimeDirectory = null)
    {
        ValidateName(switchName);
        return Path.Combine(RuntimeDirectory(runtimeDirectory), "switches", switchName);
    }

    /// <summary>Throws unless <paramref name="switchName"/> is usable as a switch name.</summary>
    public static void ValidateName(string switchName)
    {
        ArgumentNullException.ThrowIfNull(switchName);

        // "." and ".." match the pattern but would name the parent directories.
        if (!NamePattern().IsMatch(switchName) || switchName is "." or "..")
        {
            throw new ArgumentException(
                $"'{switchName}' is not a valid switch name: use 1 to 64 letters, digits, '_', '.' or '-' (not '.' or '..' alone).", nameof(switchName));
        }
    }

    /// <summary>Creates the switch directory (and its parents) readable by this user only.</summary>
    internal static string EnsureSwitchDirectory(string switchName, string? runtimeDirectory)
    {
        string directory = SwitchDirectory(switchName, runtimeDirectory);
        string runtime = RuntimeDirectory(runtimeDirectory);
        try
        {
            CreateOwnerOnly(runtime);
            CreateOwnerOnly(Path.Combine(runtime, "switches"));
            CreateOwnerOnly(directory);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new IOException(
                $"Cannot create switch directory '{directory}': no permission. Set {RuntimeDirectoryVariable} to a directory this user owns.", e);
        }

        return directory;
    }

    private static void CreateOwnerOnly(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
        }
        else
        {
            Directory.CreateDirectory(path, OwnerOnly);
        }
    }

    private static uint GetEffectiveUserId() => OperatingSystem.IsWindows() ? 0 : GetEuid();

    [GeneratedRegex("^[A-Za-z0-9_.-]{1,64}$")]
    private static partial Regex NamePattern();

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint GetEuid();
}
