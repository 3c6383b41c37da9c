namespace HostVM.Host.Api;

public sealed record VmCounts(int Total, int Running);
