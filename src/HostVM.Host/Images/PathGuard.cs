using System.Runtime.InteropServices;
using HostVM.Host.Api;

namespace HostVM.Host.Images;

/// <summary>
/// Resolves a client-given path against the directories the daemon may read from: relative paths are
/// taken from the first one; the result, with every symlink resolved (realpath), must lie inside one
/// of them. <c>..</c> that climbs out, an absolute path elsewhere, or a symlink that leads out is refused.
/// </summary>
public static partial class PathGuard
{
    public static string Resolve(string given, IReadOnlyList<string> roots, string field)
    {
        ArgumentNullException.ThrowIfNull(roots);
        if (string.IsNullOrWhiteSpace(given) || given.Contains('\0', StringComparison.Ordinal))
        {
            throw ApiProblem.BadRequest($"{field}: a path is required.", field);
        }

        string candidate = Path.GetFullPath(Path.IsPathRooted(given) ? given : Path.Combine(roots[0], given));
        if (!roots.Any(r => Inside(candidate, r)))
        {
            throw Outside(given, roots, field);
        }

        string real = RealPath(candidate) ?? throw ApiProblem.BadRequest($"{field} {given}: no such file.", field);
        if (!roots.Select(r => RealPath(r) ?? r).Any(r => Inside(real, r)))
        {
            throw Outside(given, roots, field);
        }

        if (!File.Exists(real))
        {
            throw ApiProblem.BadRequest($"{field} {given}: not a regular file.", field);
        }

        return real;
    }

    private static ApiProblem Outside(string given, IReadOnlyList<string> roots, string field) =>
        ApiProblem.BadRequest($"{field} {given}: outside the daemon's import directories ({string.Join(", ", roots)}); copy the file there first or upload it.", field);

    private static bool Inside(string path, string root)
    {
        string r = Path.TrimEndingDirectorySeparator(root) + Path.DirectorySeparatorChar;
        return path.StartsWith(r, StringComparison.Ordinal);
    }

    /// <summary>realpath(3): the canonical path with every symlink resolved; null if it does not exist.</summary>
    public static string? RealPath(string path)
    {
        IntPtr result = realpath(path, IntPtr.Zero);
        if (result == IntPtr.Zero)
        {
            return null;
        }

        try
        {
            return Marshal.PtrToStringUTF8(result);
        }
        finally
        {
            free(result);
        }
    }

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr realpath(string path, IntPtr resolved);

    [LibraryImport("libc")]
    private static partial void free(IntPtr pointer);
}
