# Terraform and provider pins. The providers come from the public Terraform registry on a laptop;
# on this project's machines (no registry) see tests/upstream/README.md for what is checked here.
terraform {
  required_version = ">= 1.6.0"

  required_providers {
    kind = {
      source  = "tehcyx/kind"
      version = "0.11.0"
    }
    helm = {
      source  = "hashicorp/helm"
      version = "3.1.2"
    }
  }
}
