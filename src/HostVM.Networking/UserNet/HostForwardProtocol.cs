namespace HostVM.Networking.UserNet;

public enum HostForwardProtocol
{
    Tcp,
    Udp,
}
