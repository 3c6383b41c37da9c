namespace HostVM.Host.Api;

/// <summary>A network's port forward as the API shows it: <c>listening</c> false when its host port could not be bound again at the daemon's start.</summary>
public sealed record ForwardView(string Protocol, string Address, int HostPort, string Vm, int GuestPort, bool Listening);
