using System.Net;

namespace HostVM.Networking.UserNet;

/// <summary>
/// Outbound UDP: each guest flow (its port and the peer it sends to) gets its own connected host
/// socket, so replies come back on it and nothing else does. Idle flows expire. DNS sent to the
/// virtual DNS address goes to the host's name server, or to <see cref="HostDnsResolver"/> when
/// the host has none configured.
/// </summary>
internal sealed class UdpNat : IDisposable
{
    private const int DnsPort = 53;
    private const long ExpiryCheckMilliseconds = 1000;

    private readonly UserNetwork _network;
    private readonly Dictionary<FlowKey, UdpNatFlow> _flows = [];
    private readonly IPEndPoint? _dnsServer;
    private readonly HostDnsResolver _hostResolver;
    private long _nextExpiryCheck;

    public UdpNat(UserNetwork network)
    {
        _network = network;
        _dnsServer = network.Options.DnsServer ?? ResolvConf.FirstNameServer(network.Options.ResolvConfPath);
        _hostResolver = new HostDnsResolver(network);
    }

    public int Count => _flows.Count;

    public bool Handle(FlowKey key, ReadOnlySpan<byte> data)
    {
        if (Ipv4.IsSpecial(key.RemoteAddress))
        {
            return false;
        }

        if (!_flows.TryGetValue(key, out var flow))
        {
            IPEndPoint target;
            if (key.RemoteAddress == _network.DnsAddress)
            {
                if (key.RemotePort != DnsPort)
                {
                    return false;
                }

                if (_dnsServer is null)
                {
                    return _hostResolver.Handle(key, data);
                }

                target = _dnsServer;
            }
            else if (_network.IsInSubnet(key.RemoteAddress) && key.RemoteAddress != _network.GatewayAddress)
            {
                // Nothing else lives on the virtual network.
                return false;
            }
            else
            {
                target = new IPEndPoint(Ipv4.ToAddress(_network.MapToHost(key.RemoteAddress)), key.RemotePort);
            }

            if (_flows.Count >= _network.Options.MaxUdpFlows)
            {
                return false;
            }

            flow = UdpNatFlow.TryOpen(_network, key, target);
            if (flow is null)
            {
                return false;
            }

            _flows.Add(key, flow);
        }

        return flow.Send(data);
    }

    public void OnTimer(long now)
    {
        if (now < _nextExpiryCheck)
        {
            return;
        }

        _nextExpiryCheck = now + ExpiryCheckMilliseconds;
        long idle = (long)_network.Options.UdpIdleTimeout.TotalMilliseconds;
        List<FlowKey>? expired = null;
        foreach (var (key, flow) in _flows)
        {
            if (now - flow.LastUsed > idle)
            {
                (expired ??= []).Add(key);
            }
        }

        if (expired is null)
        {
            return;
        }

        foreach (var key in expired)
        {
            _flows[key].Dispose();
            _flows.Remove(key);
        }
    }

    public void Dispose()
    {
        foreach (var flow in _flows.Values)
        {
            flow.Dispose();
        }

        _flows.Clear();
    }
}
