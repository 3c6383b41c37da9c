using System.Net;

namespace HostVM.Networking.UserNet;

/// <summary>Reads the host's name server from resolv.conf (resolv.conf(5)).</summary>
internal static class ResolvConf
{
    /// <summary>The first IPv4 <c>nameserver</c>, port 53; null when the file is missing or names none.</summary>
    public static IPEndPoint? FirstNameServer(string path)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        foreach (string raw in lines)
        {
            var parts = raw.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length >= 2 && parts[0] == "nameserver" &&
                IPAddress.TryParse(parts[1], out var address) &&
                address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
            {
                return new IPEndPoint(address, 53);
            }
        }

        return null;
    }
}
