using HostVM.Networking;

namespace HostVM.Cli;

/// <summary>Opens the network backend a --net option names (temporary: until the backends land).</summary>
public static class NetworkBackends
{
    public static IPacketPort Open(KeyValueList list, List<string> notes)
    {
        ArgumentNullException.ThrowIfNull(list);
        throw new DeviceOptionException($"--net {list.Text}: not available yet");
    }
}
