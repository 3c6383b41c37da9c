using System.Globalization;
using HostVM.Vmm;

namespace HostVM.Host.Security;

/// <summary>
/// The runtime directory holds every socket a tenant's data passes through (the daemon's, each VMM's API and
/// console, each network's switch). Its default, /tmp/hostvm-USER, is a name anyone can take first: a local
/// user who made it would own the parent of every socket and could swap in their own. So the daemon uses it
/// only if lstat shows a real directory (not a symbolic link) of its own user with mode 0700, and creates it
/// that way when it is missing; anything else stops the start with a one-line reason.
/// </summary>
public static class RuntimeDirectory
{
    /// <exception cref="HostSettingsException">It is a link, not a directory, another user's, or open to others.</exception>
    public static void Prepare(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
            return;
        }

        if (OwnerOnly.Status(path) is null)
        {
            Directory.CreateDirectory(path, OwnerOnly.DirectoryMode);
        }

        Check(path, OwnerOnly.Status(path));
    }

    private static void Check(string path, UnixFileStatus? status)
    {
        string fix = $"remove it, or give runtime_dir (--runtime-dir) a directory of this user's with mode 0700";
        uint self = OwnerOnly.EffectiveUserId;
        switch (status)
        {
            case null:
                throw new HostSettingsException($"runtime_dir {path}: it vanished while it was being created; start again.");
            case { Kind: UnixFileKind.SymbolicLink }:
                throw new HostSettingsException($"runtime_dir {path}: is a symbolic link, which anyone may have made to take the daemon's sockets; {fix}.");
            case { Kind: not UnixFileKind.Directory }:
                throw new HostSettingsException($"runtime_dir {path}: is not a directory; {fix}.");
            case { } s when s.Owner != self:
                throw new HostSettingsException($"runtime_dir {path}: is owned by uid {s.Owner.ToString(CultureInfo.InvariantCulture)}, not by this daemon's user (uid {self.ToString(CultureInfo.InvariantCulture)}), who would control its sockets; {fix}.");
            case { } s when (s.Mode & (UnixFileMode)0x1ff) != OwnerOnly.DirectoryMode:
                throw new HostSettingsException($"runtime_dir {path}: has mode {Octal(s.Mode)}, so others may reach or replace its sockets; make it 0700 (chmod 700 {path}).");
        }
    }

    private static string Octal(UnixFileMode mode) => "0" + Convert.ToString((int)mode & 0xfff, 8);
}
