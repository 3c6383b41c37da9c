using System.Text;

namespace HostVM.Host.Security;

/// <summary>Files that hold secrets (keys, tokens): written whole or not at all, never readable by others on the way.</summary>
public static class AtomicFile
{
    /// <summary>
    /// Writes a file whole or not at all: into a temporary file created with <paramref name="mode"/> (so a key is
    /// never readable by others, not even for a moment), flushed to disk, then renamed over <paramref name="path"/>.
    /// </summary>
    public static void Write(string path, string text, UnixFileMode mode)
    {
        string temporary = $"{path}.{Environment.ProcessId}.tmp";
        File.Delete(temporary);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = mode;
        }

        try
        {
            using (var stream = new FileStream(temporary, options))
            {
                stream.Write(Encoding.ASCII.GetBytes(text));
                stream.Flush(flushToDisk: true);
            }

            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(temporary, mode); // the umask may have taken bits the certificate should have
            }

            File.Move(temporary, path, overwrite: true);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }
}
